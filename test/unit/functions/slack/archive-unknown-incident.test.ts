/**
 * slack_archive_channel for an incident (or task) the platform does not know: it fails
 * before anything happens in Slack, so neither the notice nor the archive is done for
 * an export that could never be saved, and a corrected re-run does not find a notice
 * already posted.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { expectFailureMessage, expectOk, runFunction } from '../../../support/function-context.js';
import { useSlackFixture } from '../../../support/slack-hooks.js';

const NOTICE = 'This channel has been set to be archived';

describe('slack_archive_channel: unknown incident or task', function () {
  this.timeout(30_000);
  const slack = useSlackFixture();

  it('an incident the local platform does not know fails before any Slack call', async () => {
    const channel = slack.emu.seedChannel({ name: 'inc-4040' });
    const before = slack.emu.calls();
    const run = await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 4040, slack_channel_id: channel.id });
    const message = expectFailureMessage(run, 'not_found');
    expect(message).to.contain('Incident 4040 not found');
    expect(run.error!.retryable).to.equal(false);
    expect(slack.emu.calls() - before, 'Slack calls').to.equal(0);
    expect(slack.emu.messages(channel.id).filter((m) => m.text === NOTICE)).to.have.length(0);
    expect(slack.emu.channel(channel.id)!.isArchived).to.equal(false);

    // Once the incident exists, the archive posts its notice once and archives.
    fs.mkdirSync(path.join(slack.fx.platformDir, 'incidents', '4040'), { recursive: true });
    const again = await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 4040, slack_channel_id: channel.id, slack_archive_unassociated: true });
    expect(expectOk(again).archived).to.equal(true);
    expect(slack.emu.messages(channel.id).filter((m) => m.text === NOTICE)).to.have.length(1);
  });

  it('a task the incident does not have fails before any Slack call', async () => {
    fs.mkdirSync(path.join(slack.fx.platformDir, 'incidents', '4041'), { recursive: true });
    const channel = slack.emu.seedChannel({ name: 'inc-4041' });
    const before = slack.emu.calls();
    const run = await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 4041, task_id: 7, slack_channel_id: channel.id });
    expect(expectFailureMessage(run, 'not_found')).to.contain('Task 7 of incident 4041 not found');
    expect(slack.emu.calls() - before, 'Slack calls').to.equal(0);
    expect(slack.emu.channel(channel.id)!.isArchived).to.equal(false);
  });
});
