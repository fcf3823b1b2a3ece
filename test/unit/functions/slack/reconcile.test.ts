/**
 * The redelivery reconcile (reconcile.ts) through the real client against the Slack
 * emulator: what an earlier attempt posted or uploaded is found again, across pages, and
 * the search for an upload stays within its bound.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { silentLogger } from '../../../../src/core/logging.js';
import { ChannelCache } from '../../../../src/functions/slack/channels/cache.js';
import type { ChannelDeps } from '../../../../src/functions/slack/channels/lookup.js';
import { findEarlierPosts, findEarlierUpload, postMetadata } from '../../../../src/functions/slack/reconcile.js';
import { SlackClient } from '../../../../src/functions/slack/slack-client.js';
import { UNUSED_CONVERSATIONS } from '../../../support/conversation-conformance.js';
import { useSlackEmulator } from '../../../support/slack-hooks.js';

describe('fn_slack redelivery reconcile', function () {
  this.timeout(30_000);
  const slack = useSlackEmulator();
  let client: SlackClient;
  let deps: ChannelDeps;

  beforeEach(async () => {
    client = new SlackClient({ token: slack.emu.botToken, apiUrl: slack.emu.apiUrl, log: silentLogger(), timeoutMs: 5000, retryBudgetMs: 30_000 });
    deps = { client, cache: new ChannelCache(10), callOpts: {}, conversations: UNUSED_CONVERSATIONS };
  });

  /** Posts `parts` parts tagged for `invocationId`: the first in the channel, the rest in its thread. */
  async function postParts(channel: string, invocationId: string, parts: number): Promise<string[]> {
    const first = await client.call('chat.postMessage', { channel, text: 'part 0', metadata: postMetadata(invocationId, 0, parts) });
    const timestamps = [first.ts];
    for (let i = 1; i < parts; i++) {
      const res = await client.call('chat.postMessage', {
        channel,
        text: `part ${i}`,
        thread_ts: first.ts,
        metadata: postMetadata(invocationId, i, parts),
      });
      timestamps.push(res.ts);
    }
    return timestamps;
  }

  describe('findEarlierPosts', () => {
    it("finds every part an earlier attempt posted, through a thread longer than a page of replies, and no one else's", async () => {
      const ch = slack.emu.seedChannel({ name: 'reconcile-posts' });
      const id = randomUUID();
      const posted = await postParts(ch.id, id, 205);
      // Another invocation's part in the same thread, and a plain message after it.
      await client.call('chat.postMessage', {
        channel: ch.id,
        text: 'other',
        thread_ts: posted[0],
        metadata: postMetadata(randomUUID(), 1, 2),
      });
      await client.call('chat.postMessage', { channel: ch.id, text: 'someone else' });
      slack.emu.resetCalls();

      const found = await findEarlierPosts(deps, ch.id, id);

      expect(found.size).to.equal(205);
      expect([...found.keys()].sort((a, b) => a - b)).to.deep.equal(posted.map((_, i) => i));
      expect([...found.entries()].every(([part, ts]) => ts === posted[part])).to.equal(true);
      // 205 replies and the parent, at 200 a page: two pages.
      expect(slack.emu.calls('conversations.replies')).to.equal(2);
    });

    it('finds nothing for another invocation, without reading any thread', async () => {
      const ch = slack.emu.seedChannel({ name: 'reconcile-other' });
      await postParts(ch.id, randomUUID(), 3);
      slack.emu.resetCalls();
      expect((await findEarlierPosts(deps, ch.id, randomUUID())).size).to.equal(0);
      expect(slack.emu.calls('conversations.replies')).to.equal(0);
    });
  });

  describe('findEarlierUpload', () => {
    /** A channel with the bot's upload of seed-0.txt (12 bytes), then `after` newer messages. */
    function channelWithUpload(name: string, after: number): string {
      const ch = slack.emu.seedChannel({ name });
      slack.emu.seedMessages(ch.id, 1, { withFiles: true, users: [slack.emu.botUserId] });
      slack.emu.seedMessages(ch.id, after);
      return ch.id;
    }
    const query = (channelId: string) => ({
      channelId,
      since: new Date(Date.now() - 5000),
      botUserId: slack.emu.botUserId,
      name: 'seed-0.txt',
      size: 12,
    });

    it('finds the upload within five pages of history (1,000 messages)', async () => {
      const channelId = channelWithUpload('reconcile-upload-near', 900);
      const found = await findEarlierUpload(client, {}, query(channelId));
      expect(found?.fileId).to.be.a('string').and.match(/^F/);
      expect(found?.ts).to.equal(slack.emu.messages(channelId)[0]!.ts);
      expect(slack.emu.calls('conversations.history')).to.equal(5);
    });

    it('stops after five pages: an upload older than that is not searched for', async () => {
      const channelId = channelWithUpload('reconcile-upload-far', 1100);
      expect(await findEarlierUpload(client, {}, query(channelId))).to.equal(undefined);
      expect(slack.emu.calls('conversations.history')).to.equal(5);
    });

    it('searches only from shortly before the invocation began', async () => {
      const channelId = channelWithUpload('reconcile-upload-since', 0);
      expect((await findEarlierUpload(client, {}, { ...query(channelId), since: new Date() }))?.ts).to.equal(
        slack.emu.messages(channelId)[0]!.ts,
      );
      // An invocation that began two minutes after that upload does not take it.
      expect(await findEarlierUpload(client, {}, { ...query(channelId), since: new Date(Date.now() + 120_000) })).to.equal(undefined);
    });

    it("takes no one else's file of the same name and size", async () => {
      const ch = slack.emu.seedChannel({ name: 'reconcile-upload-user' });
      slack.emu.seedMessages(ch.id, 1, { withFiles: true });
      expect(await findEarlierUpload(client, {}, query(ch.id))).to.equal(undefined);
    });
  });
});
