import { Readable } from 'node:stream';
import { setTimeout as delay } from 'node:timers/promises';

// Namespace import: works whether the test file is loaded as ESM or compiled to CommonJS.
import { ErrorCode, LogLevel, WebClient } from '@slack/web-api';
import type { Logger, WebClientOptions } from '@slack/web-api';
import { expect } from 'chai';

import { channelNameError, DEFAULT_BOT_SCOPES, SlackEmulator, UPLOAD_METHOD } from '../../support/slack-emulator.js';
import { useSlackEmulator } from '../../support/slack-hooks.js';

const quietLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  setLevel: () => undefined,
  getLevel: () => LogLevel.ERROR,
  setName: () => undefined,
};

interface SlackErr {
  code: string;
  data?: Record<string, unknown> & { error?: string };
  statusCode?: number;
  retryAfter?: number;
}

async function rejection(p: Promise<unknown>): Promise<SlackErr> {
  try {
    await p;
  } catch (err) {
    return err as SlackErr;
  }
  throw new Error('expected the call to be rejected');
}

/** Expect a Slack platform error (HTTP 200, ok:false) with this code; returns the response body. */
async function platformError(p: Promise<unknown>, code: string): Promise<Record<string, unknown>> {
  const err = await rejection(p);
  expect(err.code, `expected platform error ${code}, got ${String((err as unknown as Error).message)}`).to.equal(
    ErrorCode.PlatformError,
  );
  expect(err.data?.error).to.equal(code);
  return err.data as Record<string, unknown>;
}

describe('SlackEmulator', function () {
  this.timeout(30_000);
  const slack = useSlackEmulator();
  let client: WebClient;

  const mk = (token: string | undefined = slack.emu.botToken, extra: WebClientOptions = {}): WebClient =>
    new WebClient(token, { slackApiUrl: slack.emu.apiUrl, retryConfig: { retries: 0 }, logger: quietLogger, ...extra });

  beforeEach(async () => {
    client = mk();
  });

  describe('auth & scopes', () => {
    it('auth.test identifies the bot and reports X-OAuth-Scopes', async () => {
      expect(slack.emu.apiUrl).to.match(/^http:\/\/127\.0\.0\.1:\d+\/api\/$/);
      const res = await client.auth.test();
      expect(res.ok).to.equal(true);
      expect(res.team_id).to.equal('T0001');
      expect(res.user_id).to.equal(slack.emu.botUserId);
      expect(res.bot_id).to.equal(slack.emu.botId);
      expect(res.url).to.equal('https://emulated.slack.com/');
      expect(res.response_metadata?.scopes).to.deep.equal([...DEFAULT_BOT_SCOPES]);
      for (const s of ['channels:manage', 'groups:write', 'chat:write.public', 'users:read.email', 'metadata.message:read']) {
        expect(DEFAULT_BOT_SCOPES).to.include(s);
      }
      const info = await client.conversations.list();
      expect(info.response_metadata?.acceptedScopes).to.include('channels:read');
    });

    it('rejects missing and unknown tokens', async () => {
      const anonymous = new WebClient(undefined, { slackApiUrl: slack.emu.apiUrl, retryConfig: { retries: 0 }, logger: quietLogger });
      await platformError(anonymous.auth.test(), 'not_authed');
      await platformError(mk('xoxb-nope').auth.test(), 'invalid_auth');
      slack.emu.addToken('xoxb-revoked', { scopes: ['chat:write'] });
      slack.emu.revokeToken('xoxb-revoked');
      await platformError(mk('xoxb-revoked').auth.test(), 'token_revoked');
    });

    it('accepts the token as a form field and JSON bodies', async () => {
      const form = await fetch(`${slack.emu.apiUrl}auth.test`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
        body: `token=${slack.emu.botToken}`,
      });
      expect(form.status).to.equal(200);
      expect(form.headers.get('x-oauth-scopes')).to.equal(DEFAULT_BOT_SCOPES.join(','));
      expect(((await form.json()) as { user_id: string }).user_id).to.equal(slack.emu.botUserId);

      const json = await fetch(`${slack.emu.apiUrl}conversations.create`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json; charset=utf-8', Authorization: `Bearer ${slack.emu.botToken}` },
        body: JSON.stringify({ name: 'json-made', is_private: true }),
      });
      const body = (await json.json()) as { ok: boolean; channel: { is_private: boolean } };
      expect(body.ok).to.equal(true);
      expect(body.channel.is_private).to.equal(true);
      expect(slack.emu.channelByName('json-made')?.isPrivate).to.equal(true);
    });

    it('returns missing_scope with needed/provided', async () => {
      slack.emu.addToken('xoxb-limited', { scopes: ['channels:read', 'chat:write'] });
      const limited = mk('xoxb-limited');
      const body = await platformError(limited.conversations.create({ name: 'nope' }), 'missing_scope');
      expect(body.needed).to.equal('channels:manage');
      expect(body.provided).to.equal('channels:read,chat:write');
      const priv = await platformError(limited.conversations.list({ types: 'private_channel' }), 'missing_scope');
      expect(priv.needed).to.equal('groups:read');
      const lookup = await platformError(limited.users.lookupByEmail({ email: 'admin@emulated.test' }), 'missing_scope');
      expect(lookup.needed).to.equal('users:read.email');
      expect(slack.emu.channelByName('nope')).to.equal(undefined);
    });

    it('answers unknown_method', async () => {
      const body = await platformError(client.apiCall('foo.bar'), 'unknown_method');
      expect(body.req_method).to.equal('foo.bar');
    });
  });

  describe('users', () => {
    it('users.lookupByEmail and users.info', async () => {
      const alice = slack.emu.addUser({ name: 'alice', email: 'Alice@Example.com', real_name: 'Alice A' });
      const found = await client.users.lookupByEmail({ email: 'alice@example.com' });
      expect(found.user?.id).to.equal(alice.id);
      expect(found.user?.id).to.match(/^U/);
      expect(found.user?.profile?.email).to.equal('Alice@Example.com');
      expect(found.user?.real_name).to.equal('Alice A');
      expect(found.user?.is_bot).to.equal(false);
      await platformError(client.users.lookupByEmail({ email: 'bob@example.com' }), 'users_not_found');
      const info = await client.users.info({ user: slack.emu.botUserId });
      expect(info.user?.is_bot).to.equal(true);
      await platformError(client.users.info({ user: 'U_NOPE' }), 'user_not_found');
      slack.emu.deactivateUser(alice.id);
      expect((await client.users.info({ user: alice.id })).user?.deleted).to.equal(true);
      await platformError(client.users.lookupByEmail({ email: 'alice@example.com' }), 'users_not_found');
    });
  });

  describe('conversations.create', () => {
    it('creates public and private channels with the bot as member', async () => {
      const pub = await client.conversations.create({ name: 'incident-42' });
      const ch = pub.channel as Record<string, unknown>;
      expect(ch.id).to.match(/^C[0-9A-Z]+$/);
      expect(ch).to.include({
        name: 'incident-42',
        is_channel: true,
        is_group: false,
        is_private: false,
        is_archived: false,
        creator: slack.emu.botUserId,
        num_members: 1,
        is_member: true,
      });
      expect(ch.created).to.be.a('number');
      const priv = await client.conversations.create({ name: 'secret_ops', is_private: true });
      expect(priv.channel?.is_private).to.equal(true);
      expect(priv.channel?.id).to.match(/^C/);
      expect(slack.emu.members(priv.channel!.id!)).to.deep.equal([slack.emu.botUserId]);
    });

    it('enforces channel name rules', async () => {
      const cases: [string, string][] = [
        ['', 'invalid_name_required'],
        ['   ', 'invalid_name_required'],
        ['a'.repeat(81), 'invalid_name_maxlength'],
        ['---', 'invalid_name_punctuation'],
        ['__-', 'invalid_name_punctuation'],
        ['Has-Upper', 'invalid_name_specials'],
        ['with space', 'invalid_name_specials'],
        ['dot.name', 'invalid_name_specials'],
        ['bang!', 'invalid_name_specials'],
      ];
      for (const [name, code] of cases) {
        expect(channelNameError(name), name).to.equal(code);
        await platformError(client.conversations.create({ name }), code);
      }
      expect((await client.conversations.create({ name: 'a'.repeat(80) })).ok).to.equal(true);
      expect((await client.conversations.create({ name: 'ok_name-2' })).ok).to.equal(true);
      expect(slack.emu.channels().map((c) => c.name)).to.deep.equal(['general', 'a'.repeat(80), 'ok_name-2']);
    });

    it('name_taken for existing, archived and private channels', async () => {
      await client.conversations.create({ name: 'dup' });
      await platformError(client.conversations.create({ name: 'dup' }), 'name_taken');
      await platformError(client.conversations.create({ name: 'general' }), 'name_taken');
      slack.emu.seedChannel({ name: 'old-one', archived: true });
      await platformError(client.conversations.create({ name: 'old-one', is_private: true }), 'name_taken');
      slack.emu.seedChannel({ name: 'hidden', isPrivate: true, members: [slack.emu.adminUserId] });
      await platformError(client.conversations.create({ name: 'hidden' }), 'name_taken');
    });
  });

  describe('conversations.info / list / members / join', () => {
    it('info with include_num_members; private channels invisible to non-members', async () => {
      const c = slack.emu.seedChannel({ name: 'info-me', members: [slack.emu.botUserId, slack.emu.adminUserId] });
      const plain = await client.conversations.info({ channel: c.id });
      expect(plain.channel?.name).to.equal('info-me');
      expect(plain.channel?.num_members).to.equal(undefined);
      const counted = await client.conversations.info({ channel: c.id, include_num_members: true });
      expect(counted.channel?.num_members).to.equal(2);
      await platformError(client.conversations.info({ channel: 'C_MISSING' }), 'channel_not_found');
      const hidden = slack.emu.seedChannel({ name: 'not-mine', isPrivate: true, members: [slack.emu.adminUserId] });
      await platformError(client.conversations.info({ channel: hidden.id }), 'channel_not_found');
    });

    it('paginates conversations.list over >250 channels with cursors', async () => {
      for (let i = 0; i < 260; i++) slack.emu.seedChannel({ name: `bulk-${String(i).padStart(3, '0')}` });
      slack.emu.seedChannel({ name: 'bulk-archived', archived: true });
      slack.emu.seedChannel({ name: 'bulk-private-mine', isPrivate: true });
      slack.emu.seedChannel({ name: 'bulk-private-other', isPrivate: true, members: [slack.emu.adminUserId] });

      const names: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const res = await client.conversations.list({
          types: 'public_channel,private_channel',
          exclude_archived: true,
          limit: 100,
          cursor,
        });
        pages += 1;
        expect(res.channels!.length).to.be.at.most(100);
        names.push(...res.channels!.map((c) => c.name as string));
        cursor = res.response_metadata?.next_cursor;
        expect(cursor).to.be.a('string');
      } while (cursor);
      expect(pages).to.equal(3);
      expect(names).to.have.length(262); // general + 260 + private-mine
      expect(new Set(names).size).to.equal(262);
      expect(names).to.include('bulk-private-mine');
      expect(names).to.not.include('bulk-private-other');
      expect(names).to.not.include('bulk-archived');

      const publicOnly = await client.conversations.list({ limit: 1000 });
      expect(publicOnly.channels!.map((c) => c.name)).to.include('bulk-archived');
      expect(publicOnly.channels!.some((c) => c.is_private)).to.equal(false);
      expect(publicOnly.response_metadata?.next_cursor).to.equal('');

      // WebClient's own paginator follows our cursors too
      let total = 0;
      for await (const page of client.paginate('conversations.list', { limit: 50, exclude_archived: true })) {
        total += (page as unknown as { channels: unknown[] }).channels.length;
      }
      expect(total).to.equal(261);
      await platformError(client.conversations.list({ cursor: 'garbage' }), 'invalid_cursor');
    });

    it('conversations.members pages with cursors', async () => {
      const ids = Array.from({ length: 25 }, (_, i) => slack.emu.addUser({ name: `m${i}`, email: `m${i}@x.test` }).id);
      const c = slack.emu.seedChannel({ name: 'crowd', members: [slack.emu.botUserId, ...ids] });
      const seen: string[] = [];
      let cursor: string | undefined;
      do {
        const res = await client.conversations.members({ channel: c.id, limit: 10, cursor });
        seen.push(...res.members!);
        cursor = res.response_metadata?.next_cursor;
      } while (cursor);
      expect(seen).to.deep.equal([slack.emu.botUserId, ...ids]);
    });

    it('conversations.join for public channels only', async () => {
      const pub = slack.emu.seedChannel({ name: 'joinable', members: [slack.emu.adminUserId] });
      const res = await client.conversations.join({ channel: pub.id });
      expect(res.channel?.id).to.equal(pub.id);
      expect(slack.emu.members(pub.id)).to.include(slack.emu.botUserId);
      const again = await client.conversations.join({ channel: pub.id });
      expect(again.warning).to.equal('already_in_channel');
      const priv = slack.emu.seedChannel({ name: 'priv-join', isPrivate: true, members: [slack.emu.adminUserId] });
      await platformError(client.conversations.join({ channel: priv.id }), 'method_not_supported_for_channel_type');
      const arch = slack.emu.seedChannel({ name: 'arch-join', archived: true, members: [] });
      await platformError(client.conversations.join({ channel: arch.id }), 'is_archived');
      await platformError(client.conversations.join({ channel: 'CNOPE' }), 'channel_not_found');
    });
  });

  describe('conversations.invite', () => {
    it('invites, reports already_in_channel / user_not_found / cant_invite_self / no_user', async () => {
      const a = slack.emu.addUser({ name: 'a', email: 'a@x.test' });
      const b = slack.emu.addUser({ name: 'b', email: 'b@x.test' });
      const { channel } = await client.conversations.create({ name: 'inv' });
      const id = channel!.id!;
      const res = await client.conversations.invite({ channel: id, users: `${a.id},${b.id}` });
      expect(res.ok).to.equal(true);
      expect(slack.emu.members(id)).to.deep.equal([slack.emu.botUserId, a.id, b.id]);

      await platformError(client.conversations.invite({ channel: id, users: a.id }), 'already_in_channel');
      await platformError(client.conversations.invite({ channel: id, users: `${a.id},${b.id}` }), 'already_in_channel');
      await platformError(client.conversations.invite({ channel: id, users: 'U_GHOST' }), 'user_not_found');
      await platformError(client.conversations.invite({ channel: id, users: slack.emu.botUserId }), 'cant_invite_self');
      await platformError(client.conversations.invite({ channel: id, users: '' }), 'no_user');
      await platformError(client.conversations.invite({ channel: 'C_GONE', users: a.id }), 'channel_not_found');

      // partial: one new + one existing succeeds without force
      const c = slack.emu.addUser({ name: 'c', email: 'c@x.test' });
      expect((await client.conversations.invite({ channel: id, users: `${a.id},${c.id}` })).ok).to.equal(true);
      expect(slack.emu.members(id)).to.include(c.id);
      // invalid user without force aborts the whole call
      const d = slack.emu.addUser({ name: 'd', email: 'd@x.test' });
      await platformError(client.conversations.invite({ channel: id, users: `${d.id},U_GHOST` }), 'user_not_found');
      expect(slack.emu.members(id)).to.not.include(d.id);
    });

    it('force=true invites the valid users and lists per-user errors', async () => {
      const a = slack.emu.addUser({ name: 'a', email: 'a@x.test' });
      const b = slack.emu.addUser({ name: 'b', email: 'b@x.test' });
      const { channel } = await client.conversations.create({ name: 'inv-force' });
      const id = channel!.id!;
      await client.conversations.invite({ channel: id, users: a.id });
      const res = await client.conversations.invite({ channel: id, users: `${a.id},${b.id},U_GHOST`, force: true });
      expect(res.ok).to.equal(true);
      expect(res.errors).to.deep.equal([
        { user: a.id, ok: false, error: 'already_in_channel' },
        { user: 'U_GHOST', ok: false, error: 'user_not_found' },
      ]);
      expect(slack.emu.members(id)).to.include(b.id);
      const none = await platformError(client.conversations.invite({ channel: id, users: a.id, force: true }), 'already_in_channel');
      expect(none.errors).to.deep.equal([{ user: a.id, ok: false, error: 'already_in_channel' }]);
    });

    it('needs membership and a live channel', async () => {
      const a = slack.emu.addUser({ name: 'a', email: 'a@x.test' });
      const notMine = slack.emu.seedChannel({ name: 'not-mine', members: [slack.emu.adminUserId] });
      await platformError(client.conversations.invite({ channel: notMine.id, users: a.id }), 'not_in_channel');
      const priv = slack.emu.seedChannel({ name: 'priv-not-mine', isPrivate: true, members: [slack.emu.adminUserId] });
      await platformError(client.conversations.invite({ channel: priv.id, users: a.id }), 'not_in_channel');
      const arch = slack.emu.seedChannel({ name: 'arch', archived: true });
      await platformError(client.conversations.invite({ channel: arch.id, users: a.id }), 'is_archived');
    });
  });

  describe('conversations.archive', () => {
    it('archives once, refuses #general and non-members', async () => {
      const { channel } = await client.conversations.create({ name: 'to-archive' });
      expect((await client.conversations.archive({ channel: channel!.id! })).ok).to.equal(true);
      expect(slack.emu.channel(channel!.id!)?.isArchived).to.equal(true);
      await platformError(client.conversations.archive({ channel: channel!.id! }), 'already_archived');
      const general = slack.emu.channelByName('general')!;
      expect(general.isGeneral).to.equal(true);
      await platformError(client.conversations.archive({ channel: general.id }), 'cant_archive_general');
      const other = slack.emu.seedChannel({ name: 'others', members: [slack.emu.adminUserId] });
      await platformError(client.conversations.archive({ channel: other.id }), 'not_in_channel');
      expect(slack.emu.channel(other.id)?.isArchived).to.equal(false);
      await platformError(client.chat.postMessage({ channel: channel!.id!, text: 'x' }), 'is_archived');
      const info = await client.conversations.info({ channel: channel!.id! });
      expect(info.channel?.is_archived).to.equal(true);
    });
  });

  describe('chat.postMessage, threads, history, replies', () => {
    it('posts, threads and pages history/replies', async () => {
      const { channel } = await client.conversations.create({ name: 'chatty' });
      const id = channel!.id!;
      const ts: string[] = [];
      for (let i = 0; i < 25; i++) {
        const r = await client.chat.postMessage({ channel: id, text: `msg ${i}` });
        expect(r.channel).to.equal(id);
        expect(r.ts).to.match(/^\d{10}\.\d{6}$/);
        expect(r.message?.text).to.equal(`msg ${i}`);
        expect(r.message?.bot_id).to.equal(slack.emu.botId);
        ts.push(r.ts!);
      }
      for (let i = 1; i < ts.length; i++) expect(ts[i] > ts[i - 1]).to.equal(true);

      const parent = ts[3];
      const replyTs: string[] = [];
      for (let i = 0; i < 5; i++) {
        const r = await client.chat.postMessage({ channel: id, text: `reply ${i}`, thread_ts: parent });
        expect(r.message?.thread_ts).to.equal(parent);
        replyTs.push(r.ts!);
      }
      expect(slack.emu.messages(id)).to.have.length(25);
      expect(slack.emu.replies(id, parent).map((m) => m.text)).to.deep.equal(['reply 0', 'reply 1', 'reply 2', 'reply 3', 'reply 4']);

      const first = await client.conversations.history({ channel: id, limit: 10 });
      expect(first.messages!.map((m) => m.text)).to.deep.equal(
        Array.from({ length: 10 }, (_, i) => `msg ${24 - i}`),
      );
      expect(first.has_more).to.equal(true);
      const seen = [...first.messages!];
      let cursor = first.response_metadata?.next_cursor;
      while (cursor) {
        const page = await client.conversations.history({ channel: id, limit: 10, cursor });
        seen.push(...page.messages!);
        cursor = page.response_metadata?.next_cursor;
        if (!cursor) expect(page.has_more).to.equal(false);
      }
      expect(seen.map((m) => m.ts)).to.deep.equal([...ts].reverse());
      const parentMsg = seen.find((m) => m.ts === parent)!;
      expect(parentMsg.thread_ts).to.equal(parent);
      expect(parentMsg.reply_count).to.equal(5);
      expect(parentMsg.latest_reply).to.equal(replyTs[4]);
      expect(parentMsg.reply_users).to.deep.equal([slack.emu.botUserId]);
      expect(seen.some((m) => m.text?.startsWith('reply'))).to.equal(false);

      const r1 = await client.conversations.replies({ channel: id, ts: parent, limit: 2 });
      expect(r1.messages!.map((m) => m.text)).to.deep.equal(['msg 3', 'reply 0', 'reply 1']);
      expect(r1.has_more).to.equal(true);
      const r2 = await client.conversations.replies({ channel: id, ts: parent, limit: 2, cursor: r1.response_metadata!.next_cursor });
      expect(r2.messages!.map((m) => m.text)).to.deep.equal(['msg 3', 'reply 2', 'reply 3']);
      const r3 = await client.conversations.replies({ channel: id, ts: parent, limit: 2, cursor: r2.response_metadata!.next_cursor });
      expect(r3.messages!.map((m) => m.text)).to.deep.equal(['msg 3', 'reply 4']);
      expect(r3.has_more).to.equal(false);
      expect(r3.response_metadata?.next_cursor).to.equal('');
      const all = await client.conversations.replies({ channel: id, ts: replyTs[1] });
      expect(all.messages).to.have.length(6);
      const lone = await client.conversations.replies({ channel: id, ts: ts[0] });
      expect(lone.messages!.map((m) => m.ts)).to.deep.equal([ts[0]]);
      await platformError(client.conversations.replies({ channel: id, ts: '1000000000.000001' }), 'thread_not_found');

      const broadcast = await client.chat.postMessage({ channel: id, text: 'loud', thread_ts: parent, reply_broadcast: true });
      expect(slack.emu.messages(id).at(-1)?.ts).to.equal(broadcast.ts);
      expect(slack.emu.messages(id).at(-1)?.subtype).to.equal('thread_broadcast');
    });

    it('honours oldest / latest / inclusive', async () => {
      const c = slack.emu.seedChannel({ name: 'ranges' });
      const msgs = slack.emu.seedMessages(c.id, 10);
      const t = msgs.map((m) => m.ts);
      const excl = await client.conversations.history({ channel: c.id, oldest: t[2], latest: t[6] });
      expect(excl.messages!.map((m) => m.ts)).to.deep.equal([t[5], t[4], t[3]]);
      const incl = await client.conversations.history({ channel: c.id, oldest: t[2], latest: t[6], inclusive: true });
      expect(incl.messages!.map((m) => m.ts)).to.deep.equal([t[6], t[5], t[4], t[3], t[2]]);
      const onlyOldest = await client.conversations.history({ channel: c.id, oldest: t[7] });
      expect(onlyOldest.messages!.map((m) => m.ts)).to.deep.equal([t[9], t[8]]);
      const paged = await client.conversations.history({ channel: c.id, oldest: t[0], limit: 4 });
      expect(paged.messages).to.have.length(4);
      expect(paged.has_more).to.equal(true);
      const rest = await client.conversations.history({ channel: c.id, oldest: t[0], limit: 4, cursor: paged.response_metadata!.next_cursor });
      expect(rest.messages!.map((m) => m.ts)).to.deep.equal([t[5], t[4], t[3], t[2]]);
      const last = await client.conversations.history({ channel: c.id, oldest: t[0], limit: 4, cursor: rest.response_metadata!.next_cursor });
      expect(last.messages!.map((m) => m.ts)).to.deep.equal([t[1]]);
      expect(last.has_more).to.equal(false);
    });

    it('history/replies need membership for bots', async () => {
      const pub = slack.emu.seedChannel({ name: 'pub-not-member', members: [slack.emu.adminUserId] });
      slack.emu.seedMessages(pub.id, 3);
      await platformError(client.conversations.history({ channel: pub.id }), 'not_in_channel');
      const priv = slack.emu.seedChannel({ name: 'priv-not-member', isPrivate: true, members: [slack.emu.adminUserId] });
      await platformError(client.conversations.history({ channel: priv.id }), 'not_in_channel');
      slack.emu.addToken('xoxp-admin', { scopes: ['channels:history'], userType: 'user', botUserId: slack.emu.adminUserId });
      const asUser = await mk('xoxp-admin').conversations.history({ channel: pub.id });
      expect(asUser.messages).to.have.length(3);
    });

    it('enforces chat.postMessage errors', async () => {
      const { channel } = await client.conversations.create({ name: 'rules' });
      const id = channel!.id!;
      await platformError(client.chat.postMessage({ channel: 'C_NOPE', text: 'x' }), 'channel_not_found');
      await platformError(client.chat.postMessage({ channel: id, text: '' }), 'no_text');
      await platformError(client.chat.postMessage({ channel: id, text: 'x'.repeat(40_001) }), 'msg_too_long');
      expect((await client.chat.postMessage({ channel: id, text: 'x'.repeat(40_000) })).ok).to.equal(true);

      const section = (text: string) => ({ type: 'section', text: { type: 'mrkdwn', text } });
      const many = Array.from({ length: 51 }, () => ({ type: 'divider' }));
      const tooMany = await platformError(client.chat.postMessage({ channel: id, text: 't', blocks: many }), 'invalid_blocks');
      expect((tooMany.response_metadata as { messages: string[] }).messages[0]).to.match(/^\[ERROR\]/);
      expect((await client.chat.postMessage({ channel: id, text: 't', blocks: many.slice(0, 50) })).ok).to.equal(true);
      await platformError(client.chat.postMessage({ channel: id, text: 't', blocks: [section('s'.repeat(3001))] }), 'invalid_blocks');
      expect((await client.chat.postMessage({ channel: id, text: 't', blocks: [section('s'.repeat(3000))] })).ok).to.equal(true);
      const header = (text: string) => ({ type: 'header', text: { type: 'plain_text', text } });
      await platformError(client.chat.postMessage({ channel: id, text: 't', blocks: [header('h'.repeat(151))] }), 'invalid_blocks');
      expect((await client.chat.postMessage({ channel: id, text: 't', blocks: [header('h'.repeat(150))] })).ok).to.equal(true);
      await platformError(client.chat.postMessage({ channel: id, text: 't', blocks: [{ type: 'no_such_block' }] }), 'invalid_blocks');
      await platformError(client.apiCall('chat.postMessage', { channel: id, text: 't', blocks: '[{oops' }), 'invalid_blocks_format');
      await platformError(client.apiCall('chat.postMessage', { channel: id, text: 't', metadata: '{nope' }), 'invalid_metadata_format');
      await platformError(
        client.apiCall('chat.postMessage', { channel: id, text: 't', metadata: { event_type: 'x' } }),
        'invalid_metadata_format',
      );
      await platformError(client.chat.postMessage({ channel: id, text: 'x', thread_ts: '1000000000.000001' }), 'invalid_thread_ts');

      // blocks / attachments alone are enough
      const onlyBlocks = await client.chat.postMessage({ channel: id, blocks: [section('hi')] } as never);
      expect(onlyBlocks.message?.blocks).to.have.length(1);
      const onlyAtt = await client.chat.postMessage({ channel: id, attachments: [{ text: 'att', color: '#ff0000' }] } as never);
      expect(onlyAtt.message?.attachments?.[0]).to.include({ id: 1, text: 'att', color: '#ff0000' });
    });

    it('membership rules for posting and channel names', async () => {
      const pub = slack.emu.seedChannel({ name: 'pub-open', members: [slack.emu.adminUserId] });
      const byName = await client.chat.postMessage({ channel: '#pub-open', text: 'via name' });
      expect(byName.channel).to.equal(pub.id);
      expect((await client.chat.postMessage({ channel: 'pub-open', text: 'bare name' })).channel).to.equal(pub.id);
      expect(slack.emu.members(pub.id)).to.not.include(slack.emu.botUserId);

      slack.emu.addToken('xoxb-no-public', { scopes: ['chat:write'] });
      await platformError(mk('xoxb-no-public').chat.postMessage({ channel: pub.id, text: 'x' }), 'not_in_channel');
      const priv = slack.emu.seedChannel({ name: 'priv-closed', isPrivate: true, members: [slack.emu.adminUserId] });
      await platformError(client.chat.postMessage({ channel: priv.id, text: 'x' }), 'not_in_channel');
      expect(slack.emu.messages(priv.id)).to.have.length(0);
    });

    it('username/icon_emoji only with chat:write.customize', async () => {
      const c = slack.emu.seedChannel({ name: 'custom' });
      const custom = await client.chat.postMessage({ channel: c.id, text: 'x', username: 'SOAR', icon_emoji: ':robot_face:' });
      expect(custom.message?.username).to.equal('SOAR');
      expect(custom.message?.icons?.emoji).to.equal(':robot_face:');
      const plainTok = slack.emu.addToken('xoxb-plain', { scopes: ['chat:write'] });
      slack.emu.addMembers(c.id, [plainTok.userId]);
      const plain = await mk('xoxb-plain').chat.postMessage({ channel: c.id, text: 'x', username: 'SOAR', icon_emoji: ':robot_face:' });
      expect(plain.message?.username).to.equal(undefined);
      expect(plain.message?.icons).to.equal(undefined);
    });

    it('round-trips message metadata only when include_all_metadata=true', async () => {
      const c = slack.emu.seedChannel({ name: 'meta' });
      const metadata = { event_type: 'soar_incident', event_payload: { incident_id: 2095, nested: 'x', ok: true } };
      const posted = await client.chat.postMessage({ channel: c.id, text: 'with meta', metadata });
      await client.chat.postMessage({ channel: c.id, text: 'no meta' });
      const withMeta = await client.conversations.history({ channel: c.id, include_all_metadata: true });
      const m = withMeta.messages!.find((x) => x.ts === posted.ts)!;
      expect(m.metadata).to.deep.equal(metadata);
      expect(withMeta.messages!.find((x) => x.text === 'no meta')!.metadata).to.equal(undefined);
      const without = await client.conversations.history({ channel: c.id });
      expect(without.messages!.find((x) => x.ts === posted.ts)!.metadata).to.equal(undefined);
      const replies = await client.conversations.replies({ channel: c.id, ts: posted.ts!, include_all_metadata: true });
      expect(replies.messages![0].metadata).to.deep.equal(metadata);
    });

    it('chat.getPermalink', async () => {
      const c = slack.emu.seedChannel({ name: 'links' });
      const p = await client.chat.postMessage({ channel: c.id, text: 'link me' });
      const link = await client.chat.getPermalink({ channel: c.id, message_ts: p.ts! });
      expect(link.channel).to.equal(c.id);
      expect(link.permalink).to.equal(`https://emulated.slack.com/archives/${c.id}/p${p.ts!.replace('.', '')}`);
      const r = await client.chat.postMessage({ channel: c.id, text: 'reply', thread_ts: p.ts! });
      const rl = await client.chat.getPermalink({ channel: c.id, message_ts: r.ts! });
      expect(rl.permalink).to.equal(
        `https://emulated.slack.com/archives/${c.id}/p${r.ts!.replace('.', '')}?thread_ts=${p.ts}&cid=${c.id}`,
      );
      await platformError(client.chat.getPermalink({ channel: c.id, message_ts: '1000000000.000001' }), 'message_not_found');
      await platformError(client.chat.getPermalink({ channel: 'C_NOPE', message_ts: p.ts! }), 'channel_not_found');
    });
  });

  describe('faults', () => {
    it('429 with Retry-After surfaces as a rate-limited error', async () => {
      const c = slack.emu.seedChannel({ name: 'limited' });
      slack.emu.failNext('chat.postMessage', { retryAfter: 7 });
      const strict = mk(slack.emu.botToken, { rejectRateLimitedCalls: true });
      const err = await rejection(strict.chat.postMessage({ channel: c.id, text: 'x' }));
      expect(err.code).to.equal(ErrorCode.RateLimitedError);
      expect(err.code).to.equal('slack_webapi_rate_limited_error');
      expect(err.retryAfter).to.equal(7);
      expect(slack.emu.rateLimitedCount).to.equal(1);
      expect(slack.emu.messages(c.id)).to.have.length(0);
      expect((await strict.chat.postMessage({ channel: c.id, text: 'x' })).ok).to.equal(true);
      expect(slack.emu.calls('chat.postMessage')).to.equal(2);

      const raw = await fetch(`${slack.emu.apiUrl}auth.test`, { method: 'POST', headers: { Authorization: `Bearer ${slack.emu.botToken}` } });
      expect(raw.status).to.equal(200);
      slack.emu.failNext('auth.test', { status: 429, retryAfter: 3 });
      const limited = await fetch(`${slack.emu.apiUrl}auth.test`, { method: 'POST', headers: { Authorization: `Bearer ${slack.emu.botToken}` } });
      expect(limited.status).to.equal(429);
      expect(limited.headers.get('retry-after')).to.equal('3');
      expect(await limited.json()).to.deep.equal({ ok: false, error: 'ratelimited' });
    });

    it('HTTP 500 faults, Slack error faults, times, retries', async () => {
      slack.emu.failNext('auth.test', { status: 500, times: 2 });
      for (let i = 0; i < 2; i++) {
        const err = await rejection(client.auth.test());
        expect(err.code).to.equal(ErrorCode.HTTPError);
        expect(err.statusCode).to.equal(500);
      }
      expect((await client.auth.test()).ok).to.equal(true);
      expect(slack.emu.calls('auth.test')).to.equal(3);

      slack.emu.failNext('auth.test', { error: 'internal_error' });
      await platformError(client.auth.test(), 'internal_error');

      slack.emu.failNext('*', { error: 'fatal_error' });
      await platformError(client.users.info({ user: slack.emu.botUserId }), 'fatal_error');
      expect((await client.users.info({ user: slack.emu.botUserId })).ok).to.equal(true);

      slack.emu.failNext('auth.test', { status: 503 });
      const retrying = mk(slack.emu.botToken, { retryConfig: { retries: 2, minTimeout: 5, maxTimeout: 10 } });
      expect((await retrying.auth.test()).ok).to.equal(true);
      expect(slack.emu.calls('auth.test')).to.equal(6);
    });

    it('closeSocket, delayMs and setDown', async () => {
      slack.emu.failNext('auth.test', { closeSocket: true });
      expect((await rejection(client.auth.test())).code).to.equal(ErrorCode.RequestError);

      slack.emu.failNext('auth.test', { delayMs: 400 });
      const impatient = mk(slack.emu.botToken, { timeout: 100 });
      expect((await rejection(impatient.auth.test())).code).to.equal(ErrorCode.RequestError);
      slack.emu.failNext('auth.test', { delayMs: 50 });
      const started = Date.now();
      expect((await client.auth.test()).ok).to.equal(true);
      expect(Date.now() - started).to.be.at.least(45);

      slack.emu.setDown(true);
      const down = await rejection(client.conversations.list());
      expect(down.code).to.equal(ErrorCode.HTTPError);
      expect(down.statusCode).to.equal(503);
      slack.emu.setDown(false);
      expect((await client.conversations.list()).ok).to.equal(true);
    });

    it('afterEffect: the method takes effect and only its answer is late, lost or an error', async () => {
      const c = slack.emu.seedChannel({ name: 'late-archive' });
      slack.emu.failNext('conversations.archive', { afterEffect: true, delayMs: 400 });
      const impatient = mk(slack.emu.botToken, { timeout: 100 });
      expect((await rejection(impatient.conversations.archive({ channel: c.id }))).code).to.equal(ErrorCode.RequestError);
      expect(slack.emu.channel(c.id)!.isArchived).to.equal(true);

      const d = slack.emu.seedChannel({ name: 'lost-answer' });
      slack.emu.failNext('chat.postMessage', { afterEffect: true, closeSocket: true });
      expect((await rejection(client.chat.postMessage({ channel: d.id, text: 'sent anyway' }))).code).to.equal(ErrorCode.RequestError);
      expect(slack.emu.messages(d.id).map((m) => m.text)).to.deep.equal(['sent anyway']);

      slack.emu.failNext('chat.postMessage', { afterEffect: true, status: 503 });
      expect((await rejection(client.chat.postMessage({ channel: d.id, text: 'again' }))).statusCode).to.equal(503);
      expect(slack.emu.messages(d.id)).to.have.length(2);
    });

    it('closeAfterBytes cuts an upload off mid-body and stores nothing', async () => {
      const c = slack.emu.seedChannel({ name: 'cut-upload' });
      const { upload_url: url, file_id: id } = await client.files.getUploadURLExternal({ filename: 'big.bin', length: 1 << 20 });
      slack.emu.failNext(UPLOAD_METHOD, { closeAfterBytes: 64 * 1024 });
      const cut = await fetch(String(url), { method: 'POST', body: Buffer.alloc(1 << 20, 7) }).then(
        () => undefined,
        (err: Error) => err,
      );
      expect(cut).to.be.instanceOf(Error);
      expect(slack.emu.file(String(id))!.uploaded).to.equal(false);
      expect(slack.emu.calls(UPLOAD_METHOD)).to.equal(1);
      // The next upload to the same URL goes through.
      const ok = await fetch(String(url), { method: 'POST', body: Buffer.alloc(1 << 20, 7) });
      expect(ok.status).to.equal(200);
      await client.files.completeUploadExternal({ files: [{ id: String(id) }], channel_id: c.id });
      expect(slack.emu.fileBytes(String(id))!.length).to.equal(1 << 20);
    });

    it('counts calls and logs params without the token', async () => {
      const c = slack.emu.seedChannel({ name: 'logged' });
      await client.chat.postMessage({ channel: c.id, text: 'logged text' });
      await mk('xoxb-bad').auth.test().catch(() => undefined);
      expect(slack.emu.calls('chat.postMessage')).to.equal(1);
      expect(slack.emu.calls('auth.test')).to.equal(1);
      expect(slack.emu.calls()).to.equal(2);
      const entry = slack.emu.callLog.find((e) => e.method === 'chat.postMessage')!;
      expect(entry.params).to.include({ channel: c.id, text: 'logged text' });
      expect(entry.params).to.not.have.property('token');
      expect(entry.time).to.be.closeTo(Date.now(), 5_000);
      await fetch(`${slack.emu.apiUrl}auth.test`, { method: 'POST', body: new URLSearchParams({ token: slack.emu.botToken, x: '1' }) });
      expect(slack.emu.callLog.at(-1)!.params).to.deep.equal({ x: '1' });
    });
  });

  describe('rate-limit enforcement', () => {
    it('per-method limits answer 429 with Retry-After (scaled by timeScale)', async () => {
      const strict = mk(slack.emu.botToken, { rejectRateLimitedCalls: true });
      slack.emu.setRateLimits({ perMethod: { 'users.info': 3 } });
      for (let i = 0; i < 3; i++) expect((await strict.users.info({ user: slack.emu.botUserId })).ok).to.equal(true);
      const err = await rejection(strict.users.info({ user: slack.emu.botUserId }));
      expect(err.code).to.equal(ErrorCode.RateLimitedError);
      expect(err.retryAfter).to.equal(20); // one call every 20 s at 3/min
      expect(slack.emu.rateLimitedCount).to.equal(1);
      expect((await strict.auth.test()).ok).to.equal(true); // other methods unaffected

      slack.emu.setRateLimits({ perMethod: { 'users.info': 3 }, timeScale: 10 });
      for (let i = 0; i < 3; i++) await strict.users.info({ user: slack.emu.botUserId });
      expect((await rejection(strict.users.info({ user: slack.emu.botUserId }))).retryAfter).to.equal(2);

      // One token per 100 ms of real time: wide enough that a loaded machine's round trip
      // between the last two calls does not refill it.
      slack.emu.setRateLimits({ perMethod: { 'users.info': 60 }, burst: 1, timeScale: 10 });
      await strict.users.info({ user: slack.emu.botUserId });
      await delay(300); // 3 emulated seconds → 3 tokens, capped at burst 1
      await strict.users.info({ user: slack.emu.botUserId });
      expect((await rejection(strict.users.info({ user: slack.emu.botUserId }))).retryAfter).to.equal(1);
      expect(slack.emu.rateLimitedCount).to.equal(3);

      slack.emu.setRateLimits(undefined);
      for (let i = 0; i < 10; i++) await strict.users.info({ user: slack.emu.botUserId });
      expect(slack.emu.rateLimitedCount).to.equal(3);
    });

    it('per-channel post limit', async () => {
      const strict = mk(slack.emu.botToken, { rejectRateLimitedCalls: true });
      const a = slack.emu.seedChannel({ name: 'chan-a' });
      const b = slack.emu.seedChannel({ name: 'chan-b' });
      slack.emu.setRateLimits({ perChannelPostsPerSecond: 1 });
      await strict.chat.postMessage({ channel: a.id, text: '1' });
      const err = await rejection(strict.chat.postMessage({ channel: a.id, text: '2' }));
      expect(err.code).to.equal(ErrorCode.RateLimitedError);
      expect(err.retryAfter).to.equal(1);
      expect((await strict.chat.postMessage({ channel: b.id, text: '1' })).ok).to.equal(true);
      expect(slack.emu.messages(a.id)).to.have.length(1);
      slack.emu.setRateLimits({ perChannelPostsPerSecond: 1, timeScale: 100 });
      await strict.chat.postMessage({ channel: a.id, text: '3' });
      await delay(20);
      expect((await strict.chat.postMessage({ channel: a.id, text: '4' })).ok).to.equal(true);
    });

    it('perChannelBurst sets the channel bucket apart from the method burst', async () => {
      const strict = mk(slack.emu.botToken, { rejectRateLimitedCalls: true });
      const a = slack.emu.seedChannel({ name: 'chan-burst' });
      // Method burst 1 for users.info, channel burst 3: three posts back to back, the fourth refused.
      slack.emu.setRateLimits({ perMethod: { 'users.info': 60 }, burst: 1, perChannelPostsPerSecond: 1, perChannelBurst: 3 });
      for (let i = 0; i < 3; i++) expect((await strict.chat.postMessage({ channel: a.id, text: `b${i}` })).ok).to.equal(true);
      expect((await rejection(strict.chat.postMessage({ channel: a.id, text: 'b3' }))).retryAfter).to.equal(1);
      await strict.users.info({ user: slack.emu.botUserId });
      expect((await rejection(strict.users.info({ user: slack.emu.botUserId }))).code).to.equal(ErrorCode.RateLimitedError);
      expect(slack.emu.messages(a.id)).to.have.length(3);
      expect(slack.emu.rateLimitedCount).to.equal(2);
      // Without perChannelBurst the channel bucket takes `burst`: only one post goes through.
      slack.emu.setRateLimits({ perChannelPostsPerSecond: 1, burst: 1 });
      await strict.chat.postMessage({ channel: a.id, text: 'c0' });
      expect((await rejection(strict.chat.postMessage({ channel: a.id, text: 'c1' }))).code).to.equal(ErrorCode.RateLimitedError);
    });
  });

  describe('files', () => {
    it('filesUploadV2 end to end (Buffer) with files.info shares', async () => {
      const { channel } = await client.conversations.create({ name: 'files' });
      const id = channel!.id!;
      const bytes = Buffer.from('incident artifact \u00e9\n'.repeat(100));
      const res = await client.filesUploadV2({
        channel_id: id,
        file: bytes,
        filename: 'artifact.txt',
        title: 'Artifact',
        initial_comment: 'Here is the artifact',
      });
      expect(res.ok).to.equal(true);
      const completion = (res.files as unknown as { ok: boolean; files: { id: string; title: string }[] }[])[0];
      const fileId = completion.files[0].id;
      expect(fileId).to.match(/^F/);
      expect(completion.files[0].title).to.equal('Artifact');
      expect(slack.emu.fileBytes(fileId)?.equals(bytes)).to.equal(true);
      expect(slack.emu.calls(UPLOAD_METHOD)).to.equal(1);

      const info = await client.files.info({ file: fileId });
      expect(info.file).to.include({ id: fileId, name: 'artifact.txt', title: 'Artifact', size: bytes.length, mimetype: 'text/plain' });
      expect(info.file?.permalink).to.match(new RegExp(`^https://emulated\\.slack\\.com/files/${slack.emu.botUserId}/${fileId}/`));
      const shares = info.file?.shares?.public?.[id];
      expect(shares).to.have.length(1);
      expect(shares![0].channel_name).to.equal('files');
      const msgs = slack.emu.messages(id);
      expect(msgs).to.have.length(1);
      expect(msgs[0].ts).to.equal(shares![0].ts);
      expect(msgs[0].text).to.equal('Here is the artifact');
      expect((msgs[0].files as { id: string }[])[0].id).to.equal(fileId);

      const dl = await fetch(info.file!.url_private_download!, { headers: { Authorization: `Bearer ${slack.emu.botToken}` } });
      expect(Buffer.from(await dl.arrayBuffer()).equals(bytes)).to.equal(true);
      await platformError(client.files.info({ file: 'F_NOPE' }), 'file_not_found');
    });

    it('filesUploadV2 from a stream into a thread of a private channel', async () => {
      const { channel } = await client.conversations.create({ name: 'files-priv', is_private: true });
      const id = channel!.id!;
      const parent = await client.chat.postMessage({ channel: id, text: 'parent' });
      const res = await client.filesUploadV2({
        channel_id: id,
        thread_ts: parent.ts!,
        file: Readable.from([Buffer.from('chunk-1;'), Buffer.from('chunk-2')]),
        filename: 'log.csv',
        initial_comment: 'threaded file',
      });
      const fileId = (res.files as unknown as { files: { id: string }[] }[])[0].files[0].id;
      expect(slack.emu.fileBytes(fileId)?.toString()).to.equal('chunk-1;chunk-2');
      expect(slack.emu.replies(id, parent.ts!).map((m) => m.text)).to.deep.equal(['threaded file']);
      expect(slack.emu.messages(id)).to.have.length(1);
      const info = await client.files.info({ file: fileId });
      expect(info.file?.shares?.public).to.equal(undefined);
      const share = info.file?.shares?.private?.[id]?.[0];
      expect(share?.thread_ts).to.equal(parent.ts);
      expect(share?.reply_count).to.equal(1);
      expect(info.file?.mimetype).to.equal('text/csv');
    });

    it('shares appear only after shareDelayMs', async () => {
      slack.emu.shareDelayMs = 500;
      const c = slack.emu.seedChannel({ name: 'slow-files' });
      const res = await client.filesUploadV2({ channel_id: c.id, file: Buffer.from('x'), filename: 'x.txt' });
      const fileId = (res.files as unknown as { files: { id: string }[] }[])[0].files[0].id;
      const early = await client.files.info({ file: fileId });
      expect(early.file?.shares).to.deep.equal({});
      expect(slack.emu.messages(c.id)).to.have.length(1);
      await delay(600);
      const later = await client.files.info({ file: fileId });
      expect(later.file?.shares?.public?.[c.id]?.[0].ts).to.equal(slack.emu.messages(c.id)[0].ts);

      const fresh = await SlackEmulator.start({ shareDelayMs: 0 });
      try {
        expect(fresh.shareDelayMs).to.equal(0);
      } finally {
        await fresh.close();
      }
    });

    it('upload flow errors and the retired files.upload', async () => {
      await platformError(client.apiCall('files.upload', { channels: 'C1', content: 'x' }), 'method_deprecated');
      await platformError(client.apiCall('files.getUploadURLExternal', { filename: 'a.txt' }), 'invalid_arguments');
      await platformError(client.files.getUploadURLExternal({ filename: 'a.txt', length: 0 }), 'missing_argument');
      const url = await client.files.getUploadURLExternal({ filename: 'a.txt', length: 3 });
      expect(url.upload_url?.startsWith(`${slack.emu.baseUrl}/upload/${url.file_id}`)).to.equal(true);
      // not uploaded yet
      await platformError(client.files.completeUploadExternal({ files: [{ id: url.file_id! }] }), 'file_not_found');
      await platformError(client.files.completeUploadExternal({ files: [{ id: 'F_NOPE' }] }), 'file_not_found');
      const put = await fetch(url.upload_url!, { method: 'PUT', body: 'abc' });
      expect(put.status).to.equal(200);
      expect(await put.text()).to.equal('OK - 3');
      await platformError(
        client.files.completeUploadExternal({ files: [{ id: url.file_id! }], channel_id: 'C_NOPE' }),
        'channel_not_found',
      );
      const done = await client.files.completeUploadExternal({ files: [{ id: url.file_id!, title: 'ABC' }] });
      expect(done.files?.[0]).to.include({ id: url.file_id, title: 'ABC' });
      expect(slack.emu.fileBytes(url.file_id!)?.toString()).to.equal('abc');

      const c = slack.emu.seedChannel({ name: 'upfail' });
      slack.emu.failNext(UPLOAD_METHOD, { status: 500 });
      await rejection(client.filesUploadV2({ channel_id: c.id, file: Buffer.from('z'), filename: 'z.txt' }));
      expect(slack.emu.messages(c.id)).to.have.length(0);
    });
  });

  describe('seeding & scale', () => {
    it('seeds 100k messages and pages through them with cursors', async function () {
      this.timeout(60_000);
      const c = slack.emu.seedChannel({ name: 'huge' });
      const alice = slack.emu.addUser({ name: 'alice', email: 'alice@x.test' });
      const created = slack.emu.seedMessages(c.id, 100_000, { threads: 100, repliesPerThread: 2, users: [alice.id, slack.emu.adminUserId], withFiles: true });
      expect(created).to.have.length(100_000);
      expect(slack.emu.messages(c.id)).to.have.length(100_000);
      const parents = created.filter((m) => m.reply_count === 2);
      expect(parents).to.have.length(100);
      expect(slack.emu.replies(c.id, parents[0].ts)).to.have.length(2);
      expect(created[0].files).to.have.length(1);

      let cursor: string | undefined;
      let count = 0;
      let pages = 0;
      let prev = '9999999999.999999';
      do {
        const page = await client.conversations.history({ channel: c.id, limit: 999, cursor });
        pages += 1;
        for (const m of page.messages!) {
          expect(m.ts! < prev).to.equal(true);
          prev = m.ts!;
        }
        count += page.messages!.length;
        cursor = page.response_metadata?.next_cursor;
      } while (cursor);
      expect(count).to.equal(100_000);
      expect(pages).to.equal(Math.ceil(100_000 / 999));
      expect(prev).to.equal(created[0].ts);

      // deep pages cost the same as shallow ones (binary search, no scanning)
      const mid = created[50_000].ts;
      const deep = await client.conversations.history({ channel: c.id, latest: mid, inclusive: true, limit: 3 });
      expect(deep.messages!.map((m) => m.ts)).to.deep.equal([created[50_000].ts, created[49_999].ts, created[49_998].ts]);
      const link = await client.chat.getPermalink({ channel: c.id, message_ts: created[77_777].ts });
      expect(link.permalink).to.contain(created[77_777].ts.replace('.', ''));
    });

    it('seedChannel validates and defaults to bot membership', () => {
      const c = slack.emu.seedChannel({ name: 'seeded' });
      expect(slack.emu.members(c.id)).to.deep.equal([slack.emu.botUserId]);
      expect(() => slack.emu.seedChannel({ name: 'seeded' })).to.throw(/name_taken/);
      expect(() => slack.emu.seedChannel({ name: 'Bad Name' })).to.throw(/invalid_name_specials/);
      const archived = slack.emu.seedChannel({ name: 'seeded-arch', archived: true, isPrivate: true, members: [] });
      expect(slack.emu.channelByName('#seeded-arch')).to.include({ id: archived.id, isArchived: true, isPrivate: true });
    });
  });
});
