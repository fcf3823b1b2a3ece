/**
 * A message whose author Slack no longer knows (a departed employee whose account was
 * removed: `users.info` answers `user_not_found`) is exported under the author's id, and
 * the archive goes on. Through the real client against the emulator: the export's fake
 * client once threw the SDK's error shape while the worker's client throws its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { expectOk, runFunction } from '../../../support/function-context.js';
import { useSlackFixture } from '../../../support/slack-hooks.js';

describe('slack_archive_channel: a departed author', function () {
  this.timeout(30_000);
  const slack = useSlackFixture();

  it('exports the messages of a user Slack no longer knows under their id and archives the channel', async () => {
    fs.mkdirSync(path.join(slack.fx.platformDir, 'incidents', '2110'), { recursive: true });
    const posted = await runFunction(slack.fx, 'slack_post_message', { incident_id: 2110, slack_channel: 'inc-2110', slack_is_channel_private: false, slack_text: 'Incident opened' });
    const channelId = expectOk(posted).channel_id as string;
    const carol = slack.emu.addUser({ name: 'carol', real_name: 'Carol Known', email: 'carol@example.com' });
    slack.emu.addMembers(channelId, [carol.id]);
    slack.emu.seedMessages(channelId, 2, { users: ['U0DEPARTED9', carol.id] });

    const content = expectOk(await runFunction(slack.fx, 'slack_archive_channel', { incident_id: 2110 }));

    expect(slack.emu.channel(channelId)!.isArchived).to.equal(true);
    const text = fs.readFileSync(content.export_location as string, 'utf8');
    expect(text).to.match(/^\d+ - U0DEPARTED9 POSTED ON /m);
    expect(text).to.match(/^\d+ - Carol Known POSTED ON /m);
  });
});
