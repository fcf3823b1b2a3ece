/**
 * A message whose author Slack no longer knows (a departed employee whose account was
 * removed: `users.info` answers `user_not_found`) is exported under the author's id, and
 * the archive goes on. Through the real client against the emulator: the export's fake
 * client once threw the SDK's error shape while the worker's client throws its own.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { SlackEmulator } from '../../../support/slack-emulator.js';
import { expectOk, runFunction, slackFixture, type SlackFixture } from '../../../support/function-context.js';

describe('slack_archive_channel: a departed author', function () {
  this.timeout(30_000);
  let emu: SlackEmulator;
  let fx: SlackFixture;

  beforeEach(async () => {
    emu = await SlackEmulator.start();
    fx = await slackFixture(emu.apiUrl, emu.botToken);
  });

  afterEach(async () => {
    await fx.close();
    await emu.close();
  });

  it('exports the messages of a user Slack no longer knows under their id and archives the channel', async () => {
    fs.mkdirSync(path.join(fx.platformDir, 'incidents', '2110'), { recursive: true });
    const posted = await runFunction(fx, 'slack_post_message', { incident_id: 2110, slack_channel: 'inc-2110', slack_is_channel_private: false, slack_text: 'Incident opened' });
    const channelId = expectOk(posted).channel_id as string;
    const carol = emu.addUser({ name: 'carol', real_name: 'Carol Known', email: 'carol@example.com' });
    emu.addMembers(channelId, [carol.id]);
    emu.seedMessages(channelId, 2, { users: ['U0DEPARTED9', carol.id] });

    const content = expectOk(await runFunction(fx, 'slack_archive_channel', { incident_id: 2110 }));

    expect(emu.channel(channelId)!.isArchived).to.equal(true);
    const text = fs.readFileSync(content.export_location as string, 'utf8');
    expect(text).to.match(/^\d+ - U0DEPARTED9 POSTED ON /m);
    expect(text).to.match(/^\d+ - Carol Known POSTED ON /m);
  });
});
