/**
 * Channel resolution (channels/resolve.ts, lookup.ts, membership.ts), exercised through
 * slack_post_message against the Slack Web API emulator (real HTTP). Participants and the
 * association have their own files (invites.test.ts, record-association.test.ts).
 */
import { expect } from 'chai';
import { randomUUID } from 'node:crypto';
import { runFunction, expectOk, expectFailureMessage, createSlackState } from '../../../../support/function-context.js';
import { silentLogger } from '../../../../../src/core/logging.js';
import type { SlackResponse } from '../../../../../src/functions/slack/slack-types.js';
import { useSlackFixture } from '../../../../support/slack-hooks.js';

describe('fn_slack channel resolution (slack_post_message)', function () {
  this.timeout(30_000);
  const slack = useSlackFixture();

  const post = (inputs: Record<string, unknown>, opts: { invocationId?: string; attempt?: number } = {}) =>
    runFunction(slack.fx, 'slack_post_message', { slack_text: 'hello from SOAR', ...inputs }, opts);

  describe('which channel', () => {
    it('fails clearly, before any Slack call, with no channel input and no association', async () => {
      const run = await post({ incident_id: 2103 });
      const message = expectFailureMessage(run, 'slack_no_channel');
      expect(message).to.contain('No Slack channel is associated with incident 2103');
      expect(message).to.contain('slack_channel');
      expect(slack.emu.calls()).to.equal(0);
      expect(await slack.fx.state.conversations.list()).to.deep.equal([]);
    });

    it('uses the associated channel when no channel input is given', async () => {
      const first = expectOk(await post({ incident_id: 2103, slack_channel: 'inc-2103', slack_is_channel_private: false }));
      const run = await post({ incident_id: 2103, slack_text: 'second update' });
      const second = expectOk(run);
      expect(second.channel_id).to.equal(first.channel_id);
      expect(second.channel).to.equal('inc-2103');
      expect(run.progress).to.include('Found channel #inc-2103 associated with incident 2103');
      const texts = slack.emu.messages(first.channel_id as string).map((m) => m.text);
      expect(texts).to.deep.equal(['hello from SOAR', 'second update']);
      expect(slack.emu.calls('conversations.create')).to.equal(1);
    });

    it("does not let a task's association serve its incident, nor the incident's serve a task", async () => {
      expectOk(await post({ incident_id: 100, task_id: 7, slack_channel: 'task-7', slack_is_channel_private: false }));
      expect((await slack.fx.state.conversations.get('RES-100-7'))?.channel).to.equal('task-7');
      expectFailureMessage(await post({ incident_id: 100 }), 'slack_no_channel');

      expectOk(await post({ incident_id: 200, slack_channel: 'inc-200', slack_is_channel_private: false }));
      const message = expectFailureMessage(await post({ incident_id: 200, task_id: 8 }), 'slack_no_channel');
      expect(message).to.contain('task 8 of incident 200');
      expect((await slack.fx.state.conversations.list()).map((r) => r.resId).sort()).to.deep.equal(['RES-100-7', 'RES-200']);
    });

    it('finds a channel given by slack_channel_id with conversations.info (no listing)', async () => {
      const ch = slack.emu.seedChannel({ name: 'by-id', isPrivate: true });
      const run = await post({ incident_id: 1, slack_channel_id: ch.id });
      const content = expectOk(run);
      expect(content.channel).to.equal('by-id');
      expect(content.channel_id).to.equal(ch.id);
      expect(slack.emu.calls('conversations.info')).to.be.greaterThan(0);
      expect(slack.emu.calls('conversations.list')).to.equal(0);
      expect(slack.emu.calls('conversations.create')).to.equal(0);
      expect(slack.emu.messages(ch.id)).to.have.length(1);
      expect(run.progress).to.include('Found channel #by-id');
    });

    for (const [label, name, why] of [
      ['uppercase letters', 'Inc-2103', 'has uppercase letters'],
      ['spaces', 'inc 2103', 'has characters Slack does not allow'],
      ['81 characters', 'a'.repeat(81), 'is 81 characters long (at most 80)'],
      ['a dot', 'inc.2103', 'has characters Slack does not allow'],
    ] as const) {
      it(`refuses a channel name with ${label} before any Slack call`, async () => {
        const message = expectFailureMessage(
          await post({ incident_id: 1, slack_channel: name, slack_is_channel_private: false }),
          'invalid_channel_name',
        );
        expect(message).to.contain(`slack_channel "${name}" ${why}`);
        expect(slack.emu.calls()).to.equal(0);
        expect(slack.emu.channelByName(name.toLowerCase())).to.equal(undefined);
      });
    }

    it('accepts an 80-character name and drops a leading #', async () => {
      const long = 'b'.repeat(80);
      expect(expectOk(await post({ incident_id: 1, slack_channel: long, slack_is_channel_private: false })).channel).to.equal(long);
      const content = expectOk(await post({ incident_id: 2, slack_channel: '#inc-hash', slack_is_channel_private: true }));
      expect(content.channel).to.equal('inc-hash');
      expect(slack.emu.channelByName('inc-hash')?.isPrivate).to.equal(true);
      expect(slack.emu.channels().some((c) => c.name.startsWith('#'))).to.equal(false);
    });

    it('uses an existing channel found by name instead of creating one', async () => {
      const ch = slack.emu.seedChannel({ name: 'soc-alerts' });
      const run = await post({ incident_id: 5, slack_channel: 'soc-alerts', slack_is_channel_private: false });
      expect(expectOk(run).channel_id).to.equal(ch.id);
      expect(slack.emu.calls('conversations.create')).to.equal(0);
      expect(slack.emu.messages(ch.id).map((m) => m.text)).to.deep.equal(['hello from SOAR']);
      expect(run.progress).to.include('Found channel #soc-alerts');
    });

    it('uses an existing channel when slack_is_channel_private is not given', async () => {
      const ch = slack.emu.seedChannel({ name: 'soc-private', isPrivate: true });
      expect(expectOk(await post({ incident_id: 5, slack_channel: 'soc-private' })).channel_id).to.equal(ch.id);
      expect(slack.emu.calls('conversations.create')).to.equal(0);
    });

    it('refuses an archived channel, and posts nothing', async () => {
      const ch = slack.emu.seedChannel({ name: 'old-case', archived: true });
      const message = expectFailureMessage(await post({ incident_id: 5, slack_channel: 'old-case', slack_is_channel_private: false }), 'slack_channel_archived');
      expect(message).to.contain('#old-case');
      expect(message).to.contain('is archived');
      expect(slack.emu.messages(ch.id)).to.have.length(0);
      expect(slack.emu.calls('conversations.create')).to.equal(0);
      expect(await slack.fx.state.conversations.get('RES-5')).to.equal(undefined);
    });

    it('refuses an archived channel given by id', async () => {
      const ch = slack.emu.seedChannel({ name: 'old-by-id', archived: true });
      expectFailureMessage(await post({ incident_id: 5, slack_channel_id: ch.id }), 'slack_channel_archived');
      expect(slack.emu.messages(ch.id)).to.have.length(0);
    });

    it('refuses a privacy mismatch and names the value to set', async () => {
      slack.emu.seedChannel({ name: 'public-one' });
      const m1 = expectFailureMessage(await post({ incident_id: 5, slack_channel: 'public-one', slack_is_channel_private: true }), 'slack_channel_privacy_mismatch');
      expect(m1).to.contain('#public-one is public');
      expect(m1).to.contain('set slack_is_channel_private to false');

      slack.emu.seedChannel({ name: 'private-one', isPrivate: true });
      const m2 = expectFailureMessage(await post({ incident_id: 6, slack_channel: 'private-one', slack_is_channel_private: false }), 'slack_channel_privacy_mismatch');
      expect(m2).to.contain('set slack_is_channel_private to true');
      expect(slack.emu.calls('chat.postMessage')).to.equal(0);
    });

    it('asks for slack_is_channel_private when the channel does not exist, and creates nothing', async () => {
      const message = expectFailureMessage(await post({ incident_id: 5, slack_channel: 'brand-new' }), 'slack_privacy_required');
      expect(message).to.contain('#brand-new does not exist');
      expect(message).to.contain('slack_is_channel_private');
      expect(slack.emu.calls('conversations.create')).to.equal(0);
      expect(slack.emu.channelByName('brand-new')).to.equal(undefined);
    });

    it('creates a private channel when asked', async () => {
      const run = await post({ incident_id: 5, slack_channel: 'new-private', slack_is_channel_private: true });
      const content = expectOk(run);
      const ch = slack.emu.channelByName('new-private')!;
      expect(ch.isPrivate).to.equal(true);
      expect(content.channel_id).to.equal(ch.id);
      expect(content.is_private).to.equal(true);
      expect(ch.members.has(slack.emu.botUserId)).to.equal(true);
      expect(run.progress).to.include('Created private channel #new-private');
      expect(slack.emu.messages(ch.id)).to.have.length(1);
    });

    it('creates a public channel when asked', async () => {
      const run = await post({ incident_id: 5, slack_channel: 'new-public', slack_is_channel_private: false });
      const ch = slack.emu.channelByName('new-public')!;
      expect(ch.isPrivate).to.equal(false);
      expect(expectOk(run).is_private).to.equal(false);
      expect(run.progress).to.include('Created public channel #new-public');
    });

    it('joins a public channel the app is not a member of, then posts', async () => {
      const ch = slack.emu.seedChannel({ name: 'people-only', members: [slack.emu.adminUserId] });
      const content = expectOk(await post({ incident_id: 5, slack_channel: 'people-only', slack_is_channel_private: false }));
      expect(content.channel_id).to.equal(ch.id);
      expect(slack.emu.calls('conversations.join')).to.equal(1);
      expect(slack.emu.members(ch.id)).to.include(slack.emu.botUserId);
      expect(slack.emu.messages(ch.id)).to.have.length(1);
    });

    it('says so when the name is taken by a channel that gets archived between lookup and create', async () => {
      // Someone creates and archives the channel right after the worker listed the channels.
      const client = slack.fx.state.client;
      const original = client.call.bind(client);
      let seeded = false;
      client.call = async (method, params, opts) => {
        const res = await original(method, params, opts);
        if (method === 'conversations.list' && !seeded) {
          seeded = true;
          slack.emu.seedChannel({ name: 'race-archived', archived: true, members: [slack.emu.adminUserId] });
        }
        return res;
      };
      const message = expectFailureMessage(
        await post({ incident_id: 5, slack_channel: 'race-archived', slack_is_channel_private: false }),
        'slack_name_taken_archived',
      );
      expect(message).to.contain('#race-archived belongs to an archived Slack channel');
      expect(slack.emu.calls('conversations.create')).to.equal(1);
      expect(slack.emu.calls('chat.postMessage')).to.equal(0);
    });

    it('uses the channel that took the name between lookup and create when it is usable', async () => {
      const client = slack.fx.state.client;
      const original = client.call.bind(client);
      let seededId = '';
      client.call = async (method, params, opts) => {
        const res = await original(method, params, opts);
        if (method === 'conversations.list' && !seededId) seededId = slack.emu.seedChannel({ name: 'race-live' }).id;
        return res;
      };
      const content = expectOk(await post({ incident_id: 5, slack_channel: 'race-live', slack_is_channel_private: false }));
      expect(content.channel_id).to.equal(seededId);
      expect(slack.emu.messages(seededId)).to.have.length(1);
    });

    it('refuses a name held by an archived channel the listing shows', async () => {
      slack.emu.seedChannel({ name: 'taken-archived', archived: true, isPrivate: true });
      const message = expectFailureMessage(
        await post({ incident_id: 5, slack_channel: 'taken-archived', slack_is_channel_private: true }),
        'slack_channel_archived',
      );
      expect(message).to.contain('unarchive it in Slack');
      expect(slack.emu.calls('conversations.create')).to.equal(0);
    });

    it('caches name → id: a second lookup does not page through conversations.list again', async () => {
      for (let i = 0; i < 2500; i++) slack.emu.seedChannel({ name: `bulk-${String(i).padStart(4, '0')}`, members: [slack.emu.adminUserId] });
      const target = slack.emu.seedChannel({ name: 'zz-target' });
      expect(slack.emu.channels()).to.have.length(2502);

      const first = expectOk(await post({ incident_id: 1, slack_channel: 'zz-target', slack_is_channel_private: false }));
      expect(first.channel_id).to.equal(target.id);
      const listedFirst = slack.emu.calls('conversations.list');
      expect(listedFirst).to.equal(3); // 2,502 channels, 1,000 a page

      const second = expectOk(await post({ incident_id: 2, slack_channel: 'zz-target', slack_is_channel_private: false }));
      expect(second.channel_id).to.equal(target.id);
      expect(slack.emu.calls('conversations.list')).to.equal(listedFirst);

      // Every name seen on the way was cached too.
      const other = expectOk(await post({ incident_id: 3, slack_channel: 'bulk-1234', slack_is_channel_private: false }));
      expect(other.channel_id).to.equal(slack.emu.channelByName('bulk-1234')!.id);
      expect(slack.emu.calls('conversations.list')).to.equal(listedFirst);
      expect(slack.emu.messages(target.id)).to.have.length(2);
    });

    it('notices a cached channel that was renamed away and looks the name up again', async () => {
      expectOk(await post({ incident_id: 1, slack_channel: 'renamed', slack_is_channel_private: false }));
      const listed = slack.emu.calls('conversations.list');
      // The cache holds "renamed" → id; point it at a channel with another name.
      const other = slack.emu.seedChannel({ name: 'other-name' });
      slack.fx.state.channels.set('renamed', other.id);
      const content = expectOk(await post({ incident_id: 2, slack_channel: 'renamed', slack_is_channel_private: false }));
      expect(content.channel_id).to.equal(slack.emu.channelByName('renamed')!.id);
      expect(slack.emu.calls('conversations.list')).to.equal(listed + 1);
    });

    it('says so in a progress message when posting to a channel other than the associated one', async () => {
      expectOk(await post({ incident_id: 9, slack_channel: 'first-chan', slack_is_channel_private: false }));
      const run = await post({ incident_id: 9, slack_channel: 'second-chan', slack_is_channel_private: false });
      expectOk(run);
      expect(run.progress).to.include('Posting to #second-chan, which is not the channel associated with incident 9 (#first-chan)');
      expect((await slack.fx.state.conversations.get('RES-9'))?.channel).to.equal('first-chan');
    });

    it('does not mention another channel when posting to the associated one', async () => {
      expectOk(await post({ incident_id: 9, slack_channel: 'same-chan', slack_is_channel_private: false }));
      const run = await post({ incident_id: 9, slack_channel: 'same-chan', slack_is_channel_private: false });
      expectOk(run);
      expect(run.progress.some((p) => p.includes('not the channel associated'))).to.equal(false);
    });
  });

  describe('redelivery after an interrupted channel creation', () => {
    /** Attempt 1 creates the channel, then the worker "dies" before posting. */
    async function interruptedCreation(invocationId: string, name: string): Promise<string> {
      const client = slack.fx.state.client;
      const original = client.call.bind(client);
      client.call = async (m, params, opts) => {
        const res = await original(m, params, opts);
        if (m === 'conversations.create') throw new Error('worker died after conversations.create');
        return res;
      };
      const first = await post({ incident_id: 77, slack_channel: name, slack_is_channel_private: false, slack_text: 'once' }, { invocationId, attempt: 1 });
      expect(first.error?.message).to.equal('worker died after conversations.create');
      const created = slack.emu.channelByName(name)!;
      expect(slack.emu.messages(created.id)).to.have.length(0);
      return created.id;
    }

    /** The redelivery runs in a new worker process: fresh Slack state, empty channel cache. */
    const freshProcess = () => ({ ...slack.fx, state: createSlackState(slack.fx.config, silentLogger(), slack.fx.state.conversations) });

    it('finds the channel the earlier attempt created by name, and creates no second one', async () => {
      const invocationId = randomUUID();
      const id = await interruptedCreation(invocationId, 'inc-77');
      const run = await runFunction(freshProcess(), 'slack_post_message', { incident_id: 77, slack_channel: 'inc-77', slack_is_channel_private: false, slack_text: 'once' }, { invocationId, attempt: 2 });
      expect(expectOk(run).channel_id).to.equal(id);
      expect(slack.emu.calls('conversations.create')).to.equal(1);
      expect(slack.emu.channels().filter((c) => c.name === 'inc-77')).to.have.length(1);
      expect(slack.emu.messages(id).map((m) => m.text)).to.deep.equal(['once']);
      expect(run.progress).to.include('Found channel #inc-77');
      expect((await slack.fx.state.conversations.get('RES-77'))?.channelId).to.equal(id);
    });

    it('when the listing does not show it yet: create answers name_taken, and the channel is found and used', async () => {
      const invocationId = randomUUID();
      const id = await interruptedCreation(invocationId, 'inc-78');
      const fresh = freshProcess();
      const original = fresh.state.client.call.bind(fresh.state.client);
      let stale = true;
      fresh.state.client.call = async (m, params, opts) => {
        const res = await original(m, params, opts);
        if (m === 'conversations.list' && stale) {
          // Slack's listing lags a moment behind a creation.
          stale = false;
          return { ...res, channels: (res as SlackResponse<'conversations.list'>).channels?.filter((c) => c.name !== 'inc-78') };
        }
        return res;
      };
      const run = await runFunction(fresh, 'slack_post_message', { incident_id: 77, slack_channel: 'inc-78', slack_is_channel_private: false, slack_text: 'once' }, { invocationId, attempt: 2 });
      expect(expectOk(run).channel_id).to.equal(id);
      expect(slack.emu.calls('conversations.create')).to.equal(2); // the second was answered name_taken
      expect(slack.emu.channels().filter((c) => c.name === 'inc-78')).to.have.length(1);
      expect(slack.emu.messages(id).map((m) => m.text)).to.deep.equal(['once']);
      expect(run.progress).to.include('Found channel #inc-78');
      expect(run.progress.some((p) => p.startsWith('Created'))).to.equal(false);
    });
  });
});
