/**
 * Checks shared by the fault and scale integration tests: publishing a batch of posts,
 * what the Slack emulator holds per invocation, and what a caller received per invocation.
 */
import { randomUUID } from 'node:crypto';
import { expect } from 'chai';
import { Caller } from './harness.js';
import type { SlackEmulator } from './slack-emulator.js';

/** The event type slack_post_message tags its posts with (src/functions/slack/reconcile.ts). */
const POST_EVENT_TYPE = 'soar_worker_post';

/**
 * Publishes one slack_post_message invocation per entry of `inputs` to `destination`,
 * each with a fresh id used as both message id and correlation id (so the ledger, the
 * Slack message metadata and the replies can be matched up). Returns the ids in order.
 */
export function publishPosts(caller: Caller, destination: string, inputs: Record<string, unknown>[]): string[] {
  return inputs.map((input) => {
    const id = randomUUID();
    caller.publish(destination, caller.invocation('slack_post_message', input), { messageId: id, correlationId: id });
    return id;
  });
}

/** How many of `ids` have a final reply so far. */
export function countAnswered(caller: Caller, ids: string[]): number {
  return ids.filter((id) => caller.finalReplies(id).length > 0).length;
}

/**
 * Waits until at least `atLeast` of `ids` are answered, polling every 10 ms so that a
 * fault injected next (a kill, a stop) lands as soon as the batch is that far along.
 */
export async function waitForAnswered(caller: Caller, ids: string[], atLeast: number, timeoutMs: number, workerOutput: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (countAnswered(caller, ids) < atLeast) {
    if (Date.now() > deadline) throw new Error(`only ${countAnswered(caller, ids)} of ${ids.length} answered; a worker said:\n${workerOutput().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Checks that each of `ids` has exactly one Slack message; returns them all by invocation. */
export function expectOnePostEach(emu: SlackEmulator, ids: string[]): Map<string, { channel: string; ts: string }[]> {
  const posts = postsByInvocation(emu);
  for (const id of ids) expect(posts.get(id) ?? [], `Slack messages of ${id}`).to.have.length(1);
  return posts;
}

/** Top-level messages in every channel, grouped by the invocation id in their metadata. */
export function postsByInvocation(emu: SlackEmulator): Map<string, { channel: string; ts: string }[]> {
  const found = new Map<string, { channel: string; ts: string }[]>();
  for (const ch of emu.channels()) {
    for (const m of emu.messages(ch.id)) {
      if (m.metadata?.event_type !== POST_EVENT_TYPE) continue;
      const id = String(m.metadata.event_payload.invocation_id);
      const list = found.get(id) ?? [];
      list.push({ channel: ch.name, ts: m.ts });
      found.set(id, list);
    }
  }
  return found;
}

/**
 * Every invocation (by correlation id) has at least one final reply, a successful one, and
 * every final reply it got is the same. Returns the correlation ids answered more than once.
 */
export function expectAnsweredSuccessfully(caller: Caller, correlationIds: string[]): string[] {
  const twice: string[] = [];
  for (const id of correlationIds) {
    const finals = caller.finalReplies(id);
    expect(finals.length, `final replies of ${id}`).to.be.greaterThan(0);
    expect(finals[0]!.message, JSON.stringify(finals[0])).to.equal('Completed');
    for (const f of finals.slice(1)) expect(f, `repeated final reply of ${id}`).to.deep.equal(finals[0]);
    if (finals.length > 1) twice.push(id);
  }
  return twice;
}

export const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/**
 * A throwaway PostgreSQL database for spawned workers, which keep their tables in the
 * `public` schema of the database their store URL names. Returns its URL and a drop().
 */
export async function tempPostgresDatabase(prefix: string): Promise<{ url: string; drop: () => Promise<void> }> {
  const { default: pg } = await import('pg');
  const name = `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE "${name}"`);
  const url = new URL(PG_URL);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`) };
}

const closedCallers = new WeakMap<Caller, string>();

/**
 * Opens a Caller and remembers if its broker connection closes: that takes the caller's
 * exclusive reply queue with it, and with it any reply not yet consumed. No test closes
 * other tests' connections (test/support/rabbitmq.ts), but a broker restarted or a
 * developer's `rabbitmqctl close_all_connections` would, and the failure says so.
 */
export async function openWatchedCaller(): Promise<Caller> {
  const caller = await Caller.open();
  caller.connection.on('close', (err?: Error) => closedCallers.set(caller, err?.message ?? 'closed'));
  return caller;
}

/**
 * Caller.waitForFinal, failing with what explains a missing reply: whether the caller's
 * own connection was closed by the broker, and the end of a worker's output.
 */
export async function waitForFinal(caller: Caller, ids: string[], timeoutMs: number, workerOutput: () => string): Promise<void> {
  try {
    await caller.waitForFinal(ids, timeoutMs);
  } catch (err) {
    const closed = closedCallers.get(caller);
    const why = closed
      ? `the caller's own broker connection was closed (${closed}), losing replies with its reply queue`
      : "the caller's broker connection stayed up";
    throw new Error(`${(err as Error).message}; ${why}; a worker said:\n${workerOutput().slice(-3000)}`);
  }
}
