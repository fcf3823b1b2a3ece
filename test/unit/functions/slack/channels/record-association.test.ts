/**
 * Recording the incident ↔ channel association (channels/record-association.ts), exercised
 * through slack_post_message against the Slack Web API emulator (real HTTP).
 */
import { expect } from 'chai';
import { runFunction, expectOk, expectFailureMessage } from '../../../../support/function-context.js';
import { useSlackFixture } from '../../../../support/slack-hooks.js';

describe('fn_slack incident ↔ channel association (slack_post_message)', function () {
  this.timeout(30_000);
  const slack = useSlackFixture();

  const post = (inputs: Record<string, unknown>, opts: { invocationId?: string; attempt?: number } = {}) =>
    runFunction(slack.fx, 'slack_post_message', { slack_text: 'hello from SOAR', ...inputs }, opts);

  describe('association', () => {
    it('records the first successful post, and a later post does not change it', async () => {
      const before = Date.now();
      const first = expectOk(await post({ incident_id: 77, slack_channel: 'inc-77', slack_is_channel_private: true }));
      const after = Date.now();
      const row = await slack.fx.state.conversations.get('RES-77');
      expect(row).to.not.equal(undefined);
      expect(row!.resId).to.equal('RES-77');
      expect(row!.incidentId).to.equal(77);
      expect(row!.taskId).to.equal(null);
      expect(row!.channel).to.equal('inc-77');
      expect(row!.channelId).to.equal(first.channel_id);
      expect(row!.channelType).to.equal('Private');
      expect(row!.permalink).to.equal(first.url);
      expect(row!.permalink).to.match(/^https:\/\/emulated\.slack\.com\/archives\/C[A-Z0-9]+\/p\d+$/);
      expect(row!.time.getTime()).to.be.within(before - 1000, after + 1000);
      expect(row!.archived).to.equal(false);

      expectOk(await post({ incident_id: 77, slack_channel: 'inc-77-b', slack_is_channel_private: false }));
      expectOk(await post({ incident_id: 77 }));
      expect(await slack.fx.state.conversations.get('RES-77')).to.deep.equal(row);
      expect(await slack.fx.state.conversations.list()).to.have.length(1);
    });

    it('records a task association with its task id and a Public type', async () => {
      const content = expectOk(await post({ incident_id: 78, task_id: 3, slack_channel: 'task-3', slack_is_channel_private: false }));
      const row = await slack.fx.state.conversations.get('RES-78-3');
      expect(row).to.include({
        resId: 'RES-78-3',
        incidentId: 78,
        taskId: 3,
        channel: 'task-3',
        channelType: 'Public',
        channelId: content.channel_id,
      });
      expect(await slack.fx.state.conversations.get('RES-78')).to.equal(undefined);
    });

    it('does not record an association when the post fails', async () => {
      slack.emu.failNext('chat.postMessage', { error: 'restricted_action' });
      expectFailureMessage(await post({ incident_id: 79, slack_channel: 'inc-79', slack_is_channel_private: false }), 'slack_restricted');
      expect(await slack.fx.state.conversations.get('RES-79')).to.equal(undefined);
    });

    it('two concurrent first posts for a new incident and channel create one channel and one row', async () => {
      const [a, b] = await Promise.all([
        post({ incident_id: 300, slack_channel: 'inc-300', slack_is_channel_private: false, slack_text: 'first' }),
        post({ incident_id: 300, slack_channel: 'inc-300', slack_is_channel_private: false, slack_text: 'second' }),
      ]);
      const ca = expectOk(a);
      const cb = expectOk(b);
      expect(ca.channel_id).to.equal(cb.channel_id);
      expect(slack.emu.calls('conversations.create')).to.equal(1);
      expect(slack.emu.channels().filter((c) => c.name === 'inc-300')).to.have.length(1);
      const rows = await slack.fx.state.conversations.list();
      expect(rows).to.have.length(1);
      expect(rows[0]!.channelId).to.equal(ca.channel_id);
      expect(
        slack.emu
          .messages(ca.channel_id as string)
          .map((m) => m.text)
          .sort(),
      ).to.deep.equal(['first', 'second']);
      expect([...a.progress, ...b.progress].filter((p) => p.startsWith('Associated #inc-300'))).to.have.length(1);
    });
  });
});
