/**
 * A test plugin that adds a recording handler set to fn_slack's inbound handlers
 * (src/functions/slack/inbound/handlers.ts): every envelope routed to it appends one
 * JSON line to `[inbound_test] record_file`, so a test counts handler runs across
 * worker processes, restarts and crashes. Mirroring, asks and triage land separately;
 * this proves the path from Slack to `routeEnvelope` takes effect once and in order.
 *
 * `delay_ms` slows each handler run (to widen windows in which a crash can fall).
 */
import fs from 'node:fs';
import { definePlugin } from '../../src/core/runtime/plugin.js';
import { INBOUND_HANDLER_SETS } from '../../src/functions/slack/inbound/handlers.js';
import type { InboundContext, InboundHandlers } from '../../src/functions/slack/inbound/router.js';

export interface RecordedRun {
  key: string;
  kind: 'event' | 'action' | 'view' | 'command';
  type?: string;
  channel?: string;
  text?: string;
  attempt: number;
  pid: number;
}

/** Reads what the recording handlers wrote (empty before the first run). */
export function readRecorded(file: string): RecordedRun[] {
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as RecordedRun);
}

interface RecorderConfig {
  record_file: string;
  delay_ms: number;
}

let installed: { file: string; delayMs: number } | undefined;

function recording(): InboundHandlers {
  const write = async (run: Omit<RecordedRun, 'pid' | 'attempt'>, ctx: InboundContext) => {
    if (!installed) return;
    if (installed.delayMs > 0) await new Promise((r) => setTimeout(r, installed!.delayMs));
    fs.appendFileSync(installed.file, `${JSON.stringify({ ...run, attempt: ctx.attempt, pid: process.pid })}\n`);
  };
  const event = (e: Record<string, unknown>, ctx: InboundContext) =>
    write({ key: ctx.key, kind: 'event', type: String(e.type), channel: String(e.channel), text: String(e.text ?? '') }, ctx);
  return {
    events: { message: event, app_mention: event },
    actions: { test: (a, _p, ctx) => write({ key: ctx.key, kind: 'action', text: a.value ?? '' }, ctx) },
    views: { test: (_p, ctx) => write({ key: ctx.key, kind: 'view' }, ctx) },
    command: (p, ctx) => write({ key: ctx.key, kind: 'command', channel: String(p.channel_id), text: String(p.text ?? '') }, ctx),
  };
}

export default definePlugin<RecorderConfig, undefined>({
  packageName: 'inbound_test',
  packageVersion: '1.0.0',
  configSection: 'inbound_test',
  destination: 'inbound_test',
  configSchema: {
    type: 'object',
    required: ['record_file'],
    properties: { record_file: { type: 'string', minLength: 1 }, delay_ms: { type: 'integer', minimum: 0, default: 0 } },
  },
  functions: [],
  async setup(ctx) {
    // First: the router gives the slash command to one set only (the first with a command
    // handler), and fn_slack's look-up commands are in the list too.
    if (!installed) INBOUND_HANDLER_SETS.unshift(recording());
    installed = { file: ctx.config.record_file, delayMs: ctx.config.delay_ms };
    return undefined;
  },
  async selftest() {
    return { state: 'success' };
  },
});
