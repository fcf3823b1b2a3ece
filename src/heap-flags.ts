/**
 * V8 heap sizing for the `worker` command, set before anything else is loaded (the CLI
 * imports this module first).
 *
 * Why: a long archive export makes garbage that survives the young generation's
 * collections and is only freed by a full collection (through Node's fetch, ~16 KB per
 * Slack call; fn_slack now calls Slack over node:http, and the export still peaked at
 * 195 MB without this flag). With Node's default heap sizing (a limit of 2 GB or more on
 * hosts with 8 GB of RAM), V8 lets the old generation grow to ~4x its live size before
 * collecting, so the export's peak RSS grows with the channel (README: Benchmarks, 4).
 * systemd/worker.service bounds it with NODE_OPTIONS heap flags; a worker started any
 * other way (`node dist/src/cli.js run`, a shell, a container) gets the bound from here.
 *
 * --max-old-space-size and --max-semi-space-size are fixed when V8 creates the heap, so
 * they cannot be set from JavaScript (v8.setFlagsFromString accepts them and changes
 * nothing); re-executing node with them would cost a second start-up and, without
 * execve in Node 20, a second process. --optimize-for-size is read at each collection:
 * V8 then grows the old generation conservatively (at most 1.3x the live size) and
 * starts marking earlier. Measured on the 100,000-message export with bare `node`:
 * 117 MB peak RSS with it, 211 MB without (with fetch); 117-122 MB with it, 195 MB
 * without (node:http). It costs CPU per Slack call (README: Benchmarks, 4).
 *
 * An operator's own choice wins: when NODE_OPTIONS or node's command line already names
 * any heap-sizing flag (the unit's, or --no-optimize-for-size to opt out), nothing is set.
 */
import v8 from 'node:v8';

/** The flag set here when the operator set none. */
export const DEFAULT_HEAP_FLAGS = ['--optimize-for-size'];

/** Flags that say the operator sized the heap themselves (with - or _, as V8 accepts both). */
const HEAP_FLAG = /(^|\s)--(no-)?(max-old-space-size|max-semi-space-size|max-heap-size|optimize-for-size|heap-growing-percent)\b/;

/** True when node was started with heap flags of its own (NODE_OPTIONS or the command line). */
export function operatorSetHeapFlags(nodeOptions: string | undefined, execArgv: readonly string[]): boolean {
  const given = `${nodeOptions ?? ''} ${execArgv.join(' ')}`.replace(/_/g, '-');
  return HEAP_FLAG.test(given);
}

if (!operatorSetHeapFlags(process.env.NODE_OPTIONS, process.execArgv)) {
  for (const flag of DEFAULT_HEAP_FLAGS) v8.setFlagsFromString(flag);
}
