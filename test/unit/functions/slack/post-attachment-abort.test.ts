/**
 * slack_post_attachment waits for Slack to show the uploaded file's share (it appears a
 * moment late). That wait obeys the invocation's abort signal (the worker's shutdown
 * timeout): once aborted, no further files.info poll is made and the function ends.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { runFunction } from '../../../support/function-context.js';
import { useSlackFixture } from '../../../support/slack-hooks.js';

describe('slack_post_attachment: aborted while waiting for the share', function () {
  this.timeout(30_000);
  const slack = useSlackFixture({ emulator: { shareDelayMs: 60_000 } });

  it('stops polling files.info when the invocation is aborted', async () => {
    const dir = path.join(slack.fx.platformDir, 'incidents', '2103', 'attachments', '1');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'report.txt'), 'evidence');
    const abort = new AbortController();
    const running = runFunction(
      slack.fx,
      'slack_post_attachment',
      { incident_id: 2103, attachment_id: 1, slack_channel: 'inc-2103', slack_is_channel_private: false },
      { signal: abort.signal },
    );
    for (let i = 0; i < 500 && slack.emu.calls('files.info') === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(slack.emu.calls('files.info'), 'the share poll began').to.equal(1);
    abort.abort();
    const run = await running;
    expect(run.error?.message).to.match(/Stopped while waiting for Slack/);
    // Every poll after the first waits at least 100 ms: had the wait ignored the abort, more would follow.
    await new Promise((r) => setTimeout(r, 400));
    expect(slack.emu.calls('files.info')).to.equal(1);
  });
});
