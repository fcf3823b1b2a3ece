/**
 * The reference for the post_message benchmark: a bare `@slack/web-api` WebClient
 * posting straight to the Slack emulator, in a process of its own (as the worker is),
 * with the same number of calls in flight, the same channels and text. No broker, no
 * ledger, no progress replies: what the HTTP client and the emulator allow on this
 * machine, so that worker ÷ bare says how much of the Slack path the worker keeps.
 * It is the WebClient a new user writes, so its calls go through Node's global fetch;
 * the worker gives its WebClient a node:http transport instead
 * (src/functions/slack/http-transport.ts; README: Benchmarks, 2).
 *
 * argv: one JSON object { apiUrl, token, channels, total, warmup, inFlight }. Sends its
 * LoadResult over IPC when done, then exits.
 */
import { WebClient } from '@slack/web-api';
import { round, summarize, type LoadResult } from './common.js';

interface Args {
  apiUrl: string;
  token: string;
  channels: string[];
  total: number;
  warmup: number;
  inFlight: number;
}

const args = JSON.parse(process.argv[2]!) as Args;
// The SDK's defaults except where it must go; the emulator enforces no limits here.
const web = new WebClient(args.token, { slackApiUrl: args.apiUrl.endsWith('/') ? args.apiUrl : `${args.apiUrl}/` });

const latencies: number[] = [];
let next = 0;
let done = 0;
let failures = 0;
let firstFailure: Record<string, unknown> | undefined;
let timedFrom = 0;
const started = performance.now();
let cpuFrom = process.cpuUsage();

/** One of `inFlight` lanes: posts one message after another until all are sent. */
async function lane(): Promise<void> {
  while (next < args.total) {
    const i = next++;
    const t0 = performance.now();
    try {
      const res = await web.chat.postMessage({
        channel: args.channels[i % args.channels.length]!,
        text: `Benchmark update ${i}: containment in progress`,
      });
      if (!res.ok) throw new Error(String(res.error));
    } catch (err) {
      failures++;
      firstFailure ??= { error: String((err as Error).message ?? err) };
    }
    const now = performance.now();
    done++;
    if (done === args.warmup) {
      timedFrom = now;
      cpuFrom = process.cpuUsage();
    }
    if (done > args.warmup) latencies.push(now - t0);
  }
}

await Promise.all(Array.from({ length: Math.min(args.inFlight, args.total) }, () => lane()));
const end = performance.now();
const seconds = (end - (args.warmup > 0 ? timedFrom : started)) / 1000;
const count = args.total - args.warmup;
const result: LoadResult = {
  count,
  seconds: round(seconds, 3),
  perSecond: round(count / seconds, 1),
  latency: summarize(latencies),
  failures,
  ...(firstFailure ? { firstFailure } : {}),
  // This process's own CPU (user + system) per timed call, as the worker's is counted.
  cpuMsPerInvocation: round(((cpu) => (cpu.user + cpu.system) / 1000)(process.cpuUsage(cpuFrom)) / count, 3),
};
process.send!(result, () => process.exit(0));
