/**
 * The channel info and member cache (`channel_cache_ttl`), exercised through
 * slack_post_message against the Slack Web API emulator: fewer lookups per post, and a
 * stale entry never posts to an archived channel nor hides a privacy change past the TTL.
 */
import { expect } from 'chai';
import { runFunction, expectOk, expectFailureMessage } from '../../../../support/function-context.js';
import { ChannelCache } from '../../../../../src/functions/slack/channels/cache.js';
import { useSlackFixture } from '../../../../support/slack-hooks.js';

describe('fn_slack channel cache (slack_post_message)', function () {
  this.timeout(30_000);
  const TTL_MS = 300_000;
  const slack = useSlackFixture();
  let now: number;

  beforeEach(async () => {
    now = 1_000_000;
    // The fixture's cache with a clock the tests move.
    slack.fx.state.channels = new ChannelCache(slack.fx.config.channel_cache_size, TTL_MS, () => now);
  });

  const post = (inputs: Record<string, unknown>) => runFunction(slack.fx, 'slack_post_message', { slack_text: 'hello from SOAR', ...inputs });

  it('defaults to a 300 s TTL', () => {
    expect(slack.fx.config.channel_cache_ttl).to.equal(300);
  });

  it('looks a channel and its members up once per TTL, not once per post', async () => {
    const ch = slack.emu.seedChannel({ name: 'inc-1' });
    for (let i = 0; i < 3; i++) expect(expectOk(await post({ incident_id: 1, slack_channel_id: ch.id })).channel_id).to.equal(ch.id);
    expect(slack.emu.calls('conversations.info')).to.equal(1);
    expect(slack.emu.calls('conversations.members')).to.equal(1);
    expect(slack.emu.calls('auth.test')).to.equal(1);
    expect(slack.emu.messages(ch.id)).to.have.length(3);

    now += TTL_MS;
    expectOk(await post({ incident_id: 1 }));
    expect(slack.emu.calls('conversations.info')).to.equal(2);
    expect(slack.emu.calls('conversations.members')).to.equal(2);
  });

  it('asks Slack on every post with channel_cache_ttl = 0', async () => {
    const fx0 = await slack.fixture({ channel_cache_ttl: '0' });
    const ch = slack.emu.seedChannel({ name: 'inc-0' });
    for (let i = 0; i < 2; i++) expectOk(await runFunction(fx0, 'slack_post_message', { incident_id: 1, slack_channel_id: ch.id, slack_text: 'x' }));
    expect(slack.emu.calls('conversations.info')).to.equal(2);
    expect(slack.emu.calls('conversations.members')).to.equal(2);
  });

  it('concurrent first posts share one auth.test', async () => {
    const ch = slack.emu.seedChannel({ name: 'inc-2' });
    const runs = await Promise.all([1, 2, 3, 4, 5].map((n) => post({ incident_id: n, slack_channel_id: ch.id })));
    runs.forEach((r) => expectOk(r));
    expect(slack.emu.calls('auth.test')).to.equal(1);
  });

  it('concurrent posts to a channel whose members are not cached share one conversations.members', async () => {
    const ch = slack.emu.seedChannel({ name: 'inc-members' });
    const runs = await Promise.all([1, 2, 3, 4, 5].map((n) => post({ incident_id: 100 + n, slack_channel_id: ch.id })));
    runs.forEach((r) => expectOk(r));
    expect(slack.emu.messages(ch.id)).to.have.length(5);
    expect(slack.emu.calls('conversations.members')).to.equal(1);
  });

  it('a listing begun before this worker changed the members is not shared with a later post', async () => {
    const ch = slack.emu.seedChannel({ name: 'inc-epoch' });
    const cache = slack.fx.state.channels;
    let release!: (m: string[]) => void;
    const first = cache.sharedMemberLookup(ch.id, () => new Promise<string[]>((r) => (release = r)));
    cache.forgetMembers(ch.id); // an invite by this worker while the first listing runs
    let secondRan = false;
    const second = cache.sharedMemberLookup(ch.id, async () => {
      secondRan = true;
      return ['U1', 'U2'];
    });
    release(['U1']);
    expect(await first).to.deep.equal(['U1']);
    expect(await second).to.deep.equal(['U1', 'U2']);
    expect(secondRan).to.equal(true);
    expect(cache.members(ch.id)).to.deep.equal(['U1', 'U2']);
  });

  it('does not share a listing begun before a member change, even with channel_cache_size = 0', async () => {
    const cache = new ChannelCache(0, TTL_MS, () => now);
    let release!: (m: string[]) => void;
    const first = cache.sharedMemberLookup('C1', () => new Promise<string[]>((r) => (release = r)));
    cache.forgetMembers('C1'); // an invite by this worker while the first listing runs
    const second = cache.sharedMemberLookup('C1', async () => ['U1', 'U2']);
    expect(await second).to.deep.equal(['U1', 'U2']);
    release(['U1']);
    expect(await first).to.deep.equal(['U1']);
  });

  for (const how of ['slack_channel_id', 'slack_channel', 'the association'] as const) {
    it(`does not post to a channel archived since it was cached (${how}): same error as an uncached lookup`, async () => {
      const ch = slack.emu.seedChannel({ name: 'inc-3' });
      const inputs =
        how === 'slack_channel_id'
          ? { incident_id: 3, slack_channel_id: ch.id }
          : how === 'slack_channel'
            ? { incident_id: 3, slack_channel: 'inc-3', slack_is_channel_private: false }
            : { incident_id: 3 };
      expectOk(await post(how === 'the association' ? { incident_id: 3, slack_channel_id: ch.id } : inputs));
      const infoCalls = slack.emu.calls('conversations.info');
      slack.emu.channel(ch.id)!.isArchived = true; // archived in Slack; the cache still says live

      const message = expectFailureMessage(await post(inputs), 'slack_channel_archived');
      expect(message).to.equal(
        how === 'the association'
          ? 'The Slack channel #inc-3 associated with incident 3 was archived: give slack_channel to open a new channel, which then replaces #inc-3 as the channel of incident 3'
          : `Slack channel #inc-3 (${ch.id}) is archived: unarchive it in Slack, or give another slack_channel`,
      );
      expect(slack.emu.messages(ch.id)).to.have.length(1);
      // The stale entry was dropped and the channel looked up again; a post by association
      // needs no lookup: the association learnt from the post's is_archived.
      expect(slack.emu.calls('conversations.info')).to.equal(infoCalls + (how === 'the association' ? 0 : 1));
      expect((await slack.fx.state.conversations.get('RES-3'))!.archived).to.equal(true);
      // The next post is refused before posting.
      expectFailureMessage(await post(inputs), 'slack_channel_archived');
      expect(slack.emu.calls('chat.postMessage')).to.equal(2);
    });
  }

  it('creates the channel again when a cached channel was deleted, as an uncached lookup would', async () => {
    const ch = slack.emu.seedChannel({ name: 'inc-4' });
    expectOk(await post({ incident_id: 4, slack_channel: 'inc-4', slack_is_channel_private: false }));
    slack.emu.failNext('chat.postMessage', { error: 'channel_not_found' });
    slack.emu.failNext('conversations.info', { error: 'channel_not_found' });
    const content = expectOk(await post({ incident_id: 4, slack_channel: 'inc-4', slack_is_channel_private: false }));
    // The listing still shows it (the emulator only pretended it was gone): it is used.
    expect(content.channel_id).to.equal(ch.id);
    expect(slack.emu.calls('conversations.list')).to.equal(2);
    expect(slack.emu.messages(ch.id)).to.have.length(2);
  });

  it('a privacy change made in Slack is refused once the TTL has passed (the documented window)', async () => {
    const ch = slack.emu.seedChannel({ name: 'inc-5' });
    const inputs = { incident_id: 5, slack_channel: 'inc-5', slack_is_channel_private: false };
    expectOk(await post(inputs));
    slack.emu.channel(ch.id)!.isPrivate = true; // made private in Slack

    // Within the TTL the cached info still says public: this is the window the README states.
    now += TTL_MS - 1;
    expectOk(await post(inputs));

    now += 1;
    const message = expectFailureMessage(await post(inputs), 'slack_channel_privacy_mismatch');
    expect(message).to.contain('#inc-5 is private but slack_is_channel_private is false');
    expect(slack.emu.messages(ch.id)).to.have.length(2);
  });

  it('returns the new members after this worker invites someone', async () => {
    const alice = slack.emu.addUser({ name: 'alice', email: 'alice@example.com' });
    const ch = slack.emu.seedChannel({ name: 'inc-6' });
    expect(expectOk(await post({ incident_id: 6, slack_channel_id: ch.id })).members).to.deep.equal([slack.emu.botUserId]);
    const content = expectOk(await post({ incident_id: 6, slack_channel_id: ch.id, slack_participant_emails: 'alice@example.com' }));
    expect(content.members).to.have.members([slack.emu.botUserId, alice.id]);
    expect(slack.emu.calls('conversations.members')).to.equal(2);
  });

  it('looks a channel up again after this worker joins it', async () => {
    const ch = slack.emu.seedChannel({ name: 'inc-7', members: [slack.emu.adminUserId] });
    expect(expectOk(await post({ incident_id: 7, slack_channel_id: ch.id })).members).to.have.members([slack.emu.adminUserId, slack.emu.botUserId]);
    expect(slack.emu.calls('conversations.join')).to.equal(1);
    expectOk(await post({ incident_id: 7, slack_channel_id: ch.id }));
    expect(slack.emu.calls('conversations.join')).to.equal(1);
    expect(slack.emu.calls('conversations.info')).to.equal(1);
  });

  describe('ChannelCache', () => {
    it('bounds info and member entries by capacity, oldest first', () => {
      const cache = new ChannelCache(2, 1000, () => 0);
      for (const id of ['C1', 'C2', 'C3']) {
        cache.setInfo({ id, name: id.toLowerCase(), isPrivate: false, isArchived: false, isMember: true });
        cache.setMembers(id, ['U1'], cache.membersEpoch(id));
      }
      expect(cache.info('C1')).to.equal(undefined);
      expect(cache.members('C1')).to.equal(undefined);
      expect(cache.info('C3')?.name).to.equal('c3');
      expect(cache.members('C2')).to.deep.equal(['U1']);
    });

    it('does not keep a member listing that overlapped a change', () => {
      const cache = new ChannelCache(10, 1000, () => 0);
      const epoch = cache.membersEpoch('C1');
      cache.forgetMembers('C1'); // an invite while the listing was under way
      cache.setMembers('C1', ['U1'], epoch);
      expect(cache.members('C1')).to.equal(undefined);
    });

    it('hands out copies, so a caller cannot change what is cached', () => {
      const cache = new ChannelCache(10, 1000, () => 0);
      cache.setInfo({ id: 'C1', name: 'a', isPrivate: false, isArchived: false, isMember: false });
      cache.info('C1')!.isMember = true;
      expect(cache.info('C1')!.isMember).to.equal(false);
    });
  });
});
