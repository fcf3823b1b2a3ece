import { expect } from 'chai';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import {
  exportConversation,
  unescapeSlackText,
  UserNameCache,
  type ExportOptions,
} from '../../../../src/functions/slack/export.js';
import type { SlackCall } from '../../../../src/functions/slack/slack-client.js';
import { makeDateFormatter } from '../../../../src/functions/slack/format/dates.js';
import { SlackApiError } from '../../../../src/functions/slack/slack-errors.js';

// ---------------------------------------------------------------------------
// A fake Slack backed by in-memory arrays that follows Slack's paging rules:
// conversations.history newest first with opaque cursors; conversations.replies
// oldest first with the parent as the first element; users.info per user.
// ---------------------------------------------------------------------------

interface FakeMessage {
  ts: string;
  user?: string;
  text?: string;
  bot_id?: string;
  username?: string;
  bot_profile?: { name?: string };
  files?: Array<{ id?: string; name?: string; title?: string; permalink?: string }>;
  attachments?: Array<{ pretext?: string; text?: string }>;
  thread_ts?: string;
  reply_count?: number;
  subtype?: string;
}

interface FakeUser {
  id: string;
  name: string;
  real_name?: string;
  deleted?: boolean;
  profile?: { real_name?: string };
}

interface FakeOptions {
  /** chronological (oldest first) */
  messages: Array<FakeMessage & { replies?: FakeMessage[] }>;
  users?: FakeUser[];
  /** repeat the parent at the top of every conversations.replies page */
  parentOnEveryRepliesPage?: boolean;
  /** return an error for the n-th call (1-based) of a method */
  failOn?: { method: string; nth: number; error: Error };
  /** never settle the n-th call of a method */
  hangOn?: { method: string; nth: number };
}

/** What the worker's SlackClient throws for a Slack error answer (the export's `call` is that client). */
function platformError(code: string, method = 'users.info'): Error {
  return new SlackApiError(method, code);
}

function makeFake(opts: FakeOptions) {
  const counts: Record<string, number> = {};
  const log: Array<{ method: string; params: Record<string, unknown> }> = [];
  const users = new Map((opts.users ?? []).map((u) => [u.id, u]));
  const repliesByTs = new Map<string, FakeMessage[]>();
  const channelMessages: FakeMessage[] = opts.messages.map((m) => {
    const { replies, ...rest } = m;
    if (replies && replies.length > 0) {
      repliesByTs.set(m.ts, replies.map((r) => ({ ...r, thread_ts: m.ts })));
      return { ...rest, thread_ts: m.ts, reply_count: replies.length };
    }
    return rest;
  });
  const newestFirst = [...channelMessages].reverse();

  const page = <T>(items: T[], params: Record<string, unknown>, defaultLimit: number) => {
    const limit = Number(params.limit ?? defaultLimit);
    const start = params.cursor ? Number(String(params.cursor).replace(/^cur_/, '')) : 0;
    const slice = items.slice(start, start + limit);
    const next = start + limit < items.length ? `cur_${start + limit}` : '';
    return { slice, next, start };
  };

  // Answers like Slack's, built here: typed as the client's calls by the cast below.
  const fake = async (method: string, params: Record<string, unknown>): Promise<unknown> => {
    counts[method] = (counts[method] ?? 0) + 1;
    log.push({ method, params: { ...params } });
    if (opts.failOn && opts.failOn.method === method && opts.failOn.nth === counts[method]) throw opts.failOn.error;
    if (opts.hangOn && opts.hangOn.method === method && opts.hangOn.nth === counts[method]) {
      return new Promise(() => undefined);
    }
    await Promise.resolve();
    switch (method) {
      case 'conversations.history': {
        const { slice, next } = page(newestFirst, params, 100);
        return {
          ok: true,
          messages: slice.map((m) => ({ type: 'message', ...m })),
          has_more: next !== '',
          response_metadata: { next_cursor: next },
        };
      }
      case 'conversations.replies': {
        const parent = channelMessages.find((m) => m.ts === params.ts);
        if (!parent) throw platformError('thread_not_found', 'conversations.replies');
        const replies = repliesByTs.get(parent.ts) ?? [];
        const all = [parent, ...replies];
        const { slice, next, start } = page(all, params, 10);
        const messages = opts.parentOnEveryRepliesPage && start > 0 ? [parent, ...slice] : slice;
        // Slack omits response_metadata entirely on the last page sometimes
        return next ? { ok: true, messages, has_more: true, response_metadata: { next_cursor: next } } : { ok: true, messages, has_more: false };
      }
      case 'users.info': {
        const u = users.get(String(params.user));
        if (!u) throw platformError('user_not_found');
        return { ok: true, user: u };
      }
      default:
        throw platformError('unknown_method', method);
    }
  };
  const call = fake as SlackCall;
  return { call, counts, log };
}

const T0 = 1730000000; // 2024-10-27 03:33:20 UTC
const ts = (secondsAfter: number, micros = 100) => `${T0 + secondsAfter}.${String(micros).padStart(6, '0')}`;

const alice: FakeUser = { id: 'U1', name: 'alice', real_name: 'Alice Example' };
const bob: FakeUser = { id: 'U2', name: 'bob', profile: { real_name: 'Bob Profile' } };
const carol: FakeUser = { id: 'U3', name: 'carol' };

let tmpDir: string;
let outFile: string;

function baseOpts(extra: Partial<ExportOptions> = {}): ExportOptions {
  return {
    channel: { id: 'C0123', name: 'general' },
    outFile,
    tmpDir,
    now: () => new Date((T0 + 3600) * 1000),
    ...extra,
  };
}

async function readOut(): Promise<string> {
  return readFile(outFile, 'utf8');
}

/** Numbers of the "N - ... POSTED ON" lines, in file order. */
function numbersOf(text: string): number[] {
  return [...text.matchAll(/^(\d+) - .* POSTED ON /gm)].map((m) => Number(m[1]));
}

describe('functions/slack/export exportConversation', () => {
  beforeEach(async () => {
    tmpDir = await mkdtemp(path.join(os.tmpdir(), 'export-test-'));
    outFile = path.join(await mkdtemp(path.join(os.tmpdir(), 'export-out-')), 'out.txt');
  });

  afterEach(async () => {
    await rm(tmpDir, { recursive: true, force: true });
    await rm(path.dirname(outFile), { recursive: true, force: true });
  });

  it('writes the exact default format (header, numbering, files, indented thread replies)', async () => {
    const fake = makeFake({
      users: [alice, bob],
      messages: [
        {
          ts: ts(0),
          user: 'U1',
          text: 'Deploy done &amp; verified &lt;ok&gt;',
          files: [{ name: 'report.pdf', permalink: 'https://x.slack.com/files/U1/F1/report.pdf' }],
          replies: [
            { ts: ts(100), user: 'U2', text: 'thanks!\nsecond line' },
            { ts: ts(160), user: 'U1', text: '', files: [{ name: 'log.txt', permalink: 'https://x.slack.com/files/U1/F2/log.txt' }] },
          ],
        },
        { ts: ts(1600), bot_id: 'B1', username: 'deploy-bot', text: 'build #42 passed', subtype: 'bot_message' },
      ],
    });
    const result = await exportConversation(fake.call, baseOpts());
    expect(await readOut()).to.equal(
      'Slack channel #general (C0123) conversation history, exported 2024-10-27 04:33:20 UTC\n' +
        '\n' +
        '1 - Alice Example POSTED ON 2024-10-27 03:33:20:\n' +
        'Deploy done & verified <ok>\n' +
        '\tFile: report.pdf (https://x.slack.com/files/U1/F1/report.pdf)\n' +
        '\tBob Profile POSTED A REPLY ON 2024-10-27 03:35:00:\n' +
        '\tthanks!\n' +
        '\tsecond line\n' +
        '\tAlice Example POSTED A REPLY ON 2024-10-27 03:36:00:\n' +
        '\tFile: log.txt (https://x.slack.com/files/U1/F2/log.txt)\n' +
        '\n' +
        '2 - deploy-bot POSTED ON 2024-10-27 04:00:00:\n' +
        'build #42 passed\n' +
        '\n',
    );
    expect(result).to.deep.equal({
      messages: 2,
      replies: 2,
      threads: 1,
      files: 2,
      bytes: (await stat(outFile)).size,
      outFile,
    });
  });

  it('numbers messages oldest first across several history pages, following cursors', async () => {
    const messages = Array.from({ length: 7 }, (_, i) => ({ ts: ts(i * 60), user: 'U1', text: `msg ${i + 1}` }));
    const fake = makeFake({ users: [alice], messages });
    const result = await exportConversation(fake.call, baseOpts({ pageSize: 3 }));
    const text = await readOut();
    expect(numbersOf(text)).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
    const bodies = [...text.matchAll(/^msg (\d+)$/gm)].map((m) => Number(m[1]));
    expect(bodies).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
    const history = fake.log.filter((l) => l.method === 'conversations.history');
    expect(history.map((h) => h.params)).to.deep.equal([
      { channel: 'C0123', limit: 3 },
      { channel: 'C0123', limit: 3, cursor: 'cur_3' },
      { channel: 'C0123', limit: 3, cursor: 'cur_6' },
    ]);
    expect(result.messages).to.equal(7);
  });

  it('uses a default history page size of 200', async () => {
    const fake = makeFake({ users: [alice], messages: [{ ts: ts(0), user: 'U1', text: 'x' }] });
    await exportConversation(fake.call, baseOpts());
    expect(fake.log.find((l) => l.method === 'conversations.history')!.params.limit).to.equal(200);
  });

  it('calls conversations.replies only for thread parents and pages through long threads', async () => {
    const longThread = Array.from({ length: 5 }, (_, i) => ({ ts: ts(10 + i), user: 'U2', text: `reply ${i + 1}` }));
    const fake = makeFake({
      users: [alice, bob],
      messages: [
        { ts: ts(0), user: 'U1', text: 'parent A', replies: longThread },
        { ts: ts(100), user: 'U1', text: 'plain' },
        // a "also send to channel" reply: in history, thread_ts !== ts, no reply_count
        { ts: ts(150), user: 'U2', text: 'broadcast', thread_ts: ts(0), subtype: 'thread_broadcast' },
        { ts: ts(200), user: 'U1', text: 'parent B', replies: [{ ts: ts(210), user: 'U2', text: 'only reply' }] },
      ],
    });
    const result = await exportConversation(fake.call, baseOpts({ pageSize: 2 }));
    const replyCalls = fake.log.filter((l) => l.method === 'conversations.replies');
    // parent A: 6 items (parent + 5) in pages of 2 => 3 calls; parent B: 1 call
    expect(replyCalls.map((c) => c.params.ts)).to.have.members([ts(0), ts(0), ts(0), ts(200)]);
    expect(replyCalls.every((c) => c.params.channel === 'C0123')).to.equal(true);
    const text = await readOut();
    const threadA = text.slice(text.indexOf('parent A'), text.indexOf('2 - '));
    expect([...threadA.matchAll(/^\treply (\d)$/gm)].map((m) => Number(m[1]))).to.deep.equal([1, 2, 3, 4, 5]);
    expect(text).not.to.match(/^\tparent A$/m); // the parent is not repeated as a reply
    expect(result).to.include({ messages: 4, replies: 6, threads: 2 });
  });

  it('does not duplicate the parent when Slack repeats it on every replies page', async () => {
    const fake = makeFake({
      users: [alice, bob],
      parentOnEveryRepliesPage: true,
      messages: [
        {
          ts: ts(0),
          user: 'U1',
          text: 'parent',
          replies: Array.from({ length: 4 }, (_, i) => ({ ts: ts(10 + i), user: 'U2', text: `r${i}` })),
        },
      ],
    });
    const result = await exportConversation(fake.call, baseOpts({ pageSize: 2 }));
    expect(fake.counts['conversations.replies']).to.be.greaterThan(1);
    expect(result.replies).to.equal(4);
    expect((await readOut()).match(/parent/g)).to.have.length(1);
  });

  it('looks each user up once (cached) and prefers real_name, then profile.real_name, then name', async () => {
    const messages = Array.from({ length: 12 }, (_, i) => ({
      ts: ts(i),
      user: ['U1', 'U2', 'U3'][i % 3]!,
      text: `m${i}`,
      replies: i === 0 ? [{ ts: ts(100), user: 'U2', text: 'r' }] : undefined,
    }));
    const fake = makeFake({ users: [alice, bob, carol], messages });
    await exportConversation(fake.call, baseOpts({ pageSize: 4 }));
    const lookups = fake.log.filter((l) => l.method === 'users.info').map((l) => l.params.user);
    expect(lookups).to.have.members(['U1', 'U2', 'U3']);
    expect(lookups).to.have.length(3);
    const text = await readOut();
    expect(text).to.include('1 - Alice Example POSTED ON');
    expect(text).to.include('2 - Bob Profile POSTED ON');
    expect(text).to.include('3 - carol POSTED ON');
  });

  it('falls back to the user id for unknown (user_not_found) and deleted users, looking each up once', async () => {
    const fake = makeFake({
      users: [{ id: 'U9', name: 'gone', real_name: 'Gone User', deleted: true }],
      messages: [
        { ts: ts(0), user: 'UNKNOWN1', text: 'a' },
        { ts: ts(1), user: 'UNKNOWN1', text: 'b' },
        { ts: ts(2), user: 'U9', text: 'c' },
      ],
    });
    const result = await exportConversation(fake.call, baseOpts());
    const text = await readOut();
    expect(text).to.include('1 - UNKNOWN1 POSTED ON');
    expect(text).to.include('2 - UNKNOWN1 POSTED ON');
    expect(text).to.include('3 - U9 POSTED ON');
    expect(fake.counts['users.info']).to.equal(2);
    expect(result.messages).to.equal(3);
  });

  it('propagates other users.info errors', async () => {
    const fake = makeFake({
      users: [alice],
      messages: [{ ts: ts(0), user: 'U1', text: 'a' }],
      failOn: { method: 'users.info', nth: 1, error: platformError('invalid_auth') },
    });
    let caught: unknown;
    await exportConversation(fake.call, baseOpts()).catch((e) => (caught = e));
    expect(caught).to.be.instanceOf(SlackApiError);
    expect((caught as SlackApiError).slackError).to.equal('invalid_auth');
  });

  it('names bot messages by username, then bot_profile.name, then "bot", without users.info', async () => {
    const fake = makeFake({
      messages: [
        { ts: ts(0), bot_id: 'B1', username: 'Resilient', text: 'one', subtype: 'bot_message' },
        { ts: ts(1), bot_id: 'B2', bot_profile: { name: 'Jira Cloud' }, text: 'two' },
        { ts: ts(2), bot_id: 'B3', text: 'three' },
      ],
    });
    await exportConversation(fake.call, baseOpts());
    const text = await readOut();
    expect(text).to.include('1 - Resilient POSTED ON');
    expect(text).to.include('2 - Jira Cloud POSTED ON');
    expect(text).to.include('3 - bot POSTED ON');
    expect(fake.counts['users.info'] ?? 0).to.equal(0);
  });

  it('lists every file of messages and replies by name and permalink, and counts them', async () => {
    const fake = makeFake({
      users: [alice],
      messages: [
        {
          ts: ts(0),
          user: 'U1',
          text: 'two files',
          files: [
            { name: 'a.png', permalink: 'https://s/a' },
            { name: 'b.csv', permalink: 'https://s/b' },
          ],
          replies: [{ ts: ts(5), user: 'U1', text: 'r', files: [{ name: 'c.log', permalink: 'https://s/c' }] }],
        },
        { ts: ts(10), user: 'U1', text: 'deleted file', files: [{ id: 'F9' }] },
      ],
    });
    const result = await exportConversation(fake.call, baseOpts());
    const text = await readOut();
    expect(text).to.include('two files\n\tFile: a.png (https://s/a)\n\tFile: b.csv (https://s/b)\n');
    expect(text).to.include('\tr\n\tFile: c.log (https://s/c)\n');
    expect(text).to.include('deleted file\n\tFile: F9\n');
    expect(result.files).to.equal(4);
  });

  it("unescapes Slack's &amp; &lt; &gt; once (no double decoding)", async () => {
    expect(unescapeSlackText('a &lt;b&gt; &amp;lt; &amp;&amp; &quot;')).to.equal('a <b> &lt; && &quot;');
    const fake = makeFake({
      users: [alice],
      messages: [{ ts: ts(0), user: 'U1', text: 'x &lt; y', replies: [{ ts: ts(1), user: 'U1', text: 'p &amp;&amp; q' }] }],
    });
    await exportConversation(fake.call, baseOpts());
    const text = await readOut();
    expect(text).to.include('\nx < y\n');
    expect(text).to.include('\n\tp && q\n');
  });

  it('includes legacy attachment pretext/text (as posted by slack_post_message)', async () => {
    const fake = makeFake({
      users: [alice],
      messages: [{ ts: ts(0), user: 'U1', text: '', attachments: [{ pretext: 'Incident update', text: '*Severity*: High' }] }],
    });
    await exportConversation(fake.call, baseOpts());
    expect(await readOut()).to.include('1 - Alice Example POSTED ON 2024-10-27 03:33:20:\nIncident update\n*Severity*: High\n\n');
  });

  it('formats dates in the requested time zone (header names the zone)', async () => {
    const fake = makeFake({ users: [alice], messages: [{ ts: ts(0), user: 'U1', text: 'x', replies: [{ ts: ts(60), user: 'U1', text: 'y' }] }] });
    await exportConversation(fake.call, baseOpts({ timeZone: 'America/New_York' }));
    const text = await readOut();
    expect(text.split('\n')[0]).to.equal(
      'Slack channel #general (C0123) conversation history, exported 2024-10-27 00:33:20 America/New_York',
    );
    expect(text).to.include('1 - Alice Example POSTED ON 2024-10-26 23:33:20:');
    expect(text).to.include('\tAlice Example POSTED A REPLY ON 2024-10-26 23:34:20:');

    const fmt = makeDateFormatter('Asia/Kolkata');
    expect(fmt('1730000000.000100')).to.equal('2024-10-27 09:03:20');
    expect(makeDateFormatter('UTC')('1704067200.000000')).to.equal('2024-01-01 00:00:00'); // midnight is 00, not 24
  });

  it('formats dates exactly as Intl does, across minutes, DST changes and an offset with seconds', () => {
    // makeDateFormatter reuses the formatted minute; compare with formatting each date in full.
    const reference = (zone: string, ms: number): string => {
      const p: Record<string, string> = {};
      const fmt = new Intl.DateTimeFormat('en-US', {
        timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit',
        hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
      });
      for (const part of fmt.formatToParts(new Date(ms))) p[part.type] = part.value;
      return `${p.year}-${p.month}-${p.day} ${p.hour}:${p.minute}:${p.second}`;
    };
    const cases: Array<[string, number]> = [
      ['Europe/Berlin', Date.UTC(2024, 2, 31, 0, 58, 0)], // spring forward at 01:00 UTC
      ['America/New_York', Date.UTC(2024, 10, 3, 5, 58, 0)], // fall back at 06:00 UTC
      ['Asia/Kolkata', Date.UTC(2024, 9, 27, 3, 58, 0)],
      ['Africa/Monrovia', Date.UTC(1970, 0, 1, 0, 0, 0)], // UTC-0:44:30 until 1972
    ];
    for (const [zone, startMs] of cases) {
      const format = makeDateFormatter(zone);
      // every 7.3 s for 5 minutes: repeated minutes, minute changes, and the zone change
      for (let ms = startMs; ms < startMs + 300_000; ms += 7_300) {
        const slackTs = `${Math.floor(ms / 1000)}.${String((ms % 1000) * 1000).padStart(6, '0')}`;
        expect(format(slackTs), `${zone} ${slackTs}`).to.equal(reference(zone, ms));
      }
    }
    const monrovia = makeDateFormatter('Africa/Monrovia');
    expect(monrovia(new Date(Date.UTC(1970, 0, 1, 1, 0, 0)))).to.equal('1970-01-01 00:15:30');
  });

  it('rejects an unknown time zone before calling Slack', async () => {
    const fake = makeFake({ users: [alice], messages: [{ ts: ts(0), user: 'U1', text: 'x' }] });
    let caught: unknown;
    await exportConversation(fake.call, baseOpts({ timeZone: 'Mars/Olympus' })).catch((e) => (caught = e));
    expect((caught as Error)?.message).to.match(/Invalid time zone "Mars\/Olympus"/);
    expect(fake.log).to.have.length(0);
  });

  it('renders a custom template once per top-level message, after the header, without autoescaping', async () => {
    const template =
      '[{{ message.number }}] {{ message.user }} ({{ message.user_id }}) @ {{ message.posted_on }} ts={{ message.ts }} ' +
      'in #{{ channel.name }}/{{ channel.id }} at {{ exported_at }}: {{ message.text }}' +
      '{% for f in message.files %} <{{ f.name }}|{{ f.permalink }}>{% endfor %}\n' +
      '{% for r in message.replies %}  > {{ r.user }}/{{ r.user_id }} {{ r.posted_on }} {{ r.ts }}: {{ r.text }}' +
      '{% for f in r.files %} <{{ f.name }}>{% endfor %}\n{% endfor %}';
    const fake = makeFake({
      users: [alice, bob],
      messages: [
        { ts: ts(0), user: 'U1', text: 'a &lt;b&gt; & "c"', files: [{ name: 'f.txt', permalink: 'https://s/f' }] },
        {
          ts: ts(60),
          user: 'U2',
          text: 'q?',
          replies: [{ ts: ts(61), user: 'U1', text: 'yes', files: [{ name: 'g.txt', permalink: 'https://s/g' }] }],
        },
      ],
    });
    const result = await exportConversation(fake.call, baseOpts({ template, pageSize: 1 }));
    expect(await readOut()).to.equal(
      'Slack channel #general (C0123) conversation history, exported 2024-10-27 04:33:20 UTC\n\n' +
        `[1] Alice Example (U1) @ 2024-10-27 03:33:20 ts=${ts(0)} in #general/C0123 at 2024-10-27 04:33:20: a <b> & "c" <f.txt|https://s/f>\n` +
        `[2] Bob Profile (U2) @ 2024-10-27 03:34:20 ts=${ts(60)} in #general/C0123 at 2024-10-27 04:33:20: q?\n` +
        `  > Alice Example/U1 2024-10-27 03:34:21 ${ts(61)}: yes <g.txt>\n`,
    );
    expect(result.bytes).to.equal((await stat(outFile)).size);
  });

  it('rejects a template that fails to compile with an error naming the problem, before calling Slack', async () => {
    const fake = makeFake({ users: [alice], messages: [{ ts: ts(0), user: 'U1', text: 'x' }] });
    let caught: unknown;
    await exportConversation(fake.call, baseOpts({ template: '{% if message.text %}unterminated' })).catch((e) => (caught = e));
    expect(caught).to.be.instanceOf(Error);
    expect((caught as Error).message).to.match(/^Invalid export template: .*endif/);
    expect(fake.log).to.have.length(0);
    expect(await readdir(tmpDir)).to.deep.equal([]);
  });

  it('rejects with a clear error when the template fails while rendering, and cleans up', async () => {
    const fake = makeFake({ users: [alice], messages: [{ ts: ts(0), user: 'U1', text: 'x' }] });
    let caught: unknown;
    await exportConversation(fake.call, baseOpts({ template: '{{ message.nope() }}' })).catch((e) => (caught = e));
    expect((caught as Error)?.message).to.match(/^Export template failed on message 1: .*nope/);
    expect(await readdir(tmpDir)).to.deep.equal([]);
    let exists = true;
    await stat(outFile).catch(() => (exists = false));
    expect(exists).to.equal(false);
  });

  it('rejects promptly when aborted while a Slack call is pending, and removes scratch files', async function () {
    this.timeout(5000); // a call that never settles must not keep the export alive
    const messages = Array.from({ length: 10 }, (_, i) => ({ ts: ts(i), user: 'U1', text: `m${i}` }));
    const fake = makeFake({ users: [alice], messages, hangOn: { method: 'conversations.history', nth: 2 } });
    const controller = new AbortController();
    const pending = exportConversation(fake.call, baseOpts({ pageSize: 3, signal: controller.signal }));
    // wait until the hanging call has been made
    while ((fake.counts['conversations.history'] ?? 0) < 2) await new Promise((r) => setTimeout(r, 1));
    controller.abort();
    let caught: unknown;
    await pending.catch((e) => (caught = e));
    expect((caught as Error)?.name).to.equal('AbortError');
    expect(await readdir(tmpDir)).to.deep.equal([]);
  });

  it('rejects an already-aborted signal without calling Slack, with the abort reason', async () => {
    const fake = makeFake({ users: [alice], messages: [{ ts: ts(0), user: 'U1', text: 'x' }] });
    const controller = new AbortController();
    controller.abort(new Error('function cancelled'));
    let caught: unknown;
    await exportConversation(fake.call, baseOpts({ signal: controller.signal })).catch((e) => (caught = e));
    expect((caught as Error)?.message).to.equal('function cancelled');
    expect(fake.log).to.have.length(0);
  });

  it('stops when aborted from onProgress and cleans up', async () => {
    const messages = Array.from({ length: 3000 }, (_, i) => ({ ts: ts(i), user: 'U1', text: `m${i}` }));
    const fake = makeFake({ users: [alice], messages });
    const controller = new AbortController();
    let caught: unknown;
    await exportConversation(
      fake.call,
      baseOpts({ signal: controller.signal, onProgress: () => controller.abort() }),
    ).catch((e) => (caught = e));
    expect((caught as Error)?.name).to.equal('AbortError');
    expect(fake.counts['conversations.history']).to.equal(5); // 1,000 messages in pages of 200, then stop
    expect(await readdir(tmpDir)).to.deep.equal([]);
  });

  it('removes scratch files after a successful export', async () => {
    const fake = makeFake({ users: [alice], messages: [{ ts: ts(0), user: 'U1', text: 'x' }] });
    await exportConversation(fake.call, baseOpts());
    expect(await readdir(tmpDir)).to.deep.equal([]);
  });

  it('propagates Slack errors after removing scratch files and the partial output', async () => {
    const messages = Array.from({ length: 9 }, (_, i) => ({ ts: ts(i), user: 'U1', text: `m${i}` }));
    const boom = platformError('ratelimited');
    const fake = makeFake({ users: [alice], messages, failOn: { method: 'conversations.history', nth: 3, error: boom } });
    let caught: unknown;
    await exportConversation(fake.call, baseOpts({ pageSize: 3 })).catch((e) => (caught = e));
    expect(caught).to.equal(boom);
    expect(await readdir(tmpDir)).to.deep.equal([]);
    let exists = true;
    await stat(outFile).catch(() => (exists = false));
    expect(exists).to.equal(false);
  });

  it('propagates a synchronous throw from call as a rejection', async () => {
    const call: SlackCall = () => {
      throw new Error('not connected');
    };
    let caught: unknown;
    await exportConversation(call, baseOpts()).catch((e) => (caught = e));
    expect((caught as Error)?.message).to.equal('not connected');
    expect(await readdir(tmpDir)).to.deep.equal([]);
  });

  it('reports progress about every 1,000 messages (replies included), never more often', async () => {
    const messages = Array.from({ length: 2300 }, (_, i) => ({
      ts: ts(i * 10),
      user: 'U1',
      text: `m${i}`,
      replies: i % 100 === 0 ? [{ ts: ts(i * 10 + 1), user: 'U1', text: 'r' }, { ts: ts(i * 10 + 2), user: 'U1', text: 'r' }] : undefined,
    }));
    const fake = makeFake({ users: [alice], messages });
    const seen: Array<{ messages: number; replies: number }> = [];
    await exportConversation(fake.call, baseOpts({ onProgress: async (p) => void seen.push({ ...p }) }));
    // 2,300 messages + 46 replies = 2,346 => reported at ~1,000 and ~2,000
    expect(seen).to.have.length(2);
    expect(seen[0]!.messages + seen[0]!.replies).to.be.within(1000, 1002);
    expect(seen[1]!.messages + seen[1]!.replies).to.be.within(2000, 2002);
  });

  it('writes only the header for an empty channel', async () => {
    const fake = makeFake({ messages: [] });
    const result = await exportConversation(fake.call, baseOpts());
    expect(await readOut()).to.equal('Slack channel #general (C0123) conversation history, exported 2024-10-27 04:33:20 UTC\n\n');
    expect(result).to.include({ messages: 0, replies: 0, threads: 0, files: 0 });
  });

  it('exports 20,000 messages with threads in order', async function () {
    this.timeout(120_000);
    const N = 20_000;
    const messages = Array.from({ length: N }, (_, i) => ({
      ts: ts(i),
      user: `U${i % 50}`,
      text: `message ${i + 1} &amp; more`,
      replies: i % 500 === 0 ? [{ ts: ts(i, 200), user: 'U1', text: `reply to ${i + 1}` }] : undefined,
    }));
    const users = Array.from({ length: 50 }, (_, i) => ({ id: `U${i}`, name: `user${i}` }));
    const fake = makeFake({ users, messages });
    const result = await exportConversation(fake.call, baseOpts());
    expect(result).to.include({ messages: N, replies: 40, threads: 40 });
    expect(fake.counts['conversations.history']).to.equal(100);
    expect(fake.counts['users.info']).to.equal(50);
    const text = await readOut();
    const numbers = numbersOf(text);
    expect(numbers).to.have.length(N);
    expect(numbers.every((n, i) => n === i + 1)).to.equal(true);
    const bodies = [...text.matchAll(/^message (\d+) & more$/gm)].map((m) => Number(m[1]));
    expect(bodies.every((n, i) => n === i + 1)).to.equal(true);
    expect(bodies).to.have.length(N);
    expect(text).to.include('message 501 & more\n\tuser1 POSTED A REPLY ON');
    expect(result.bytes).to.equal(Buffer.byteLength(text));
    expect(await readdir(tmpDir)).to.deep.equal([]);
  });
});

describe('functions/slack/export UserNameCache', () => {
  it('is bounded and evicts the least recently used entry', () => {
    const cache = new UserNameCache(2);
    cache.set('a', 'A');
    cache.set('b', 'B');
    expect(cache.get('a')).to.equal('A'); // a is now most recent
    cache.set('c', 'C');
    expect(cache.size).to.equal(2);
    expect(cache.get('b')).to.equal(undefined);
    expect(cache.get('a')).to.equal('A');
    expect(cache.get('c')).to.equal('C');
  });

  it('re-looks-up a user evicted from the cache instead of growing it', () => {
    const cache = new UserNameCache(3);
    for (let i = 0; i < 100; i++) cache.set(`U${i}`, `n${i}`);
    expect(cache.size).to.equal(3);
    expect(cache.get('U99')).to.equal('n99');
    expect(cache.get('U0')).to.equal(undefined);
  });
});
