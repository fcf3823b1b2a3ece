/**
 * The ready-to-paste `worker invoke` lines the sandbox prints, one per function the
 * loaded plugins register: derived from the registry and each function's input schema,
 * so a function added to a plugin shows up here without touching the sandbox.
 *
 * Which inputs a line carries: the schema's required ones, plus the extras listed for a
 * few known functions (the channel to create, the attachment to post) so that running
 * the lines top to bottom shows each function doing something visible. Values come from
 * SAMPLES by input name (they match what seed.ts puts in the sandbox), else from the
 * schema (default, enum, examples), else a `<placeholder>` the reader must fill in.
 */
import type { FunctionDefinition, Plugin } from '../src/core/runtime/plugin.js';
import { SANDBOX_INCIDENT, SANDBOX_USERS } from './seed.js';

interface Sample {
  value: string | number | boolean;
  /** Printed as a comment above the line, e.g. where a placeholder's value comes from. */
  note?: string;
}

const emails = SANDBOX_USERS.map((u) => u.email);
const channel = `inc-${SANDBOX_INCIDENT.id}`;

/** Sample values by input name; they refer to the seeded users, incident and files. */
export const SAMPLES: Record<string, Sample> = {
  incident_id: { value: SANDBOX_INCIDENT.id },
  slack_channel: { value: channel },
  slack_is_channel_private: { value: false },
  slack_participant_emails: { value: `${emails[0]},${emails[1]}` },
  slack_text: { value: `${SANDBOX_INCIDENT.name}: containment in progress` },
  attachment_id: { value: SANDBOX_INCIDENT.attachmentId },
  artifact_id: { value: SANDBOX_INCIDENT.artifactId },
  slack_user_emails: { value: `${emails[0]},${emails[1]}` },
  slack_user_email: { value: emails[0] },
  slack_ts: {
    value: '<ts>',
    note: '<ts>: the "ts" in the result of slack_post_message above; keep the double quotes, they keep it a string',
  },
  slack_topic: { value: 'Phishing wave: containment in progress' },
  slack_purpose: { value: `Response to incident ${SANDBOX_INCIDENT.id}` },
  slack_new_name: { value: `${channel}-phishing` },
  slack_reaction: { value: 'eyes' },
  slack_bookmark_title: { value: `Incident ${SANDBOX_INCIDENT.id}` },
  slack_bookmark_link: { value: `https://soar.example.com/#incidents/${SANDBOX_INCIDENT.id}` },
  slack_limit: { value: 100 },
  slack_question: { value: 'Block the sender domain?' },
  slack_answers: { value: 'Approve,Reject' },
};

/**
 * Optional inputs worth showing for known functions. slack_post_message creates the
 * incident's channel and invites two people; the functions after it find that channel
 * through the incident's association, as a SOAR workflow would.
 */
export const EXTRAS: Record<string, string[]> = {
  // With the triage card, so its buttons can be clicked on the sandbox's page.
  slack_post_message: ['slack_channel', 'slack_is_channel_private', 'slack_participant_emails', 'slack_triage_buttons'],
  slack_post_attachment: ['attachment_id', 'slack_text'],
  // Neither is required by the schema, but the function needs one of them.
  slack_set_channel_topic: ['slack_topic', 'slack_purpose'],
  // Someone may not click at all: the default answer comes back when the question expires.
  slack_ask: ['slack_ask_timeout', 'slack_default_answer'],
};

/** How long the sandbox's question waits for a click: a person is there to answer it. */
export const ASK_TIMEOUT_SECONDS = 600;

/**
 * `worker invoke --timeout` for functions whose final reply can take longer than its
 * default 60 s: the ask's comes when someone clicks, or when it expires.
 */
export const INVOKE_TIMEOUTS: Record<string, number> = { slack_ask: ASK_TIMEOUT_SECONDS + 60 };

/** Sample values that differ for one function (its text says what it posts). */
export const FUNCTION_SAMPLES: Record<string, Record<string, Sample>> = {
  slack_post_message: { slack_triage_buttons: { value: true } },
  slack_post_attachment: { slack_text: { value: 'Headers of the reported email' } },
  slack_ask: {
    slack_ask_timeout: {
      value: ASK_TIMEOUT_SECONDS,
      note:
        `Click an answer on the view page (or with the click curl below) within ${ASK_TIMEOUT_SECONDS / 60} minutes; ` +
        'after that the question expires and the default answer comes back',
    },
    slack_default_answer: { value: 'Approve' },
  },
  slack_update_message: { slack_text: { value: `${SANDBOX_INCIDENT.name}: contained` } },
  slack_send_direct_message: { slack_text: { value: `You are on incident ${SANDBOX_INCIDENT.id}: see #${channel}` } },
  // The third person joins and leaves again, so the two invited first stay for the rest.
  slack_invite_users: { slack_participant_emails: { value: emails[2] as string } },
  slack_remove_users: { slack_participant_emails: { value: emails[2] as string } },
};

/**
 * Order of the lines: creating the channel comes first; renaming and archiving last,
 * since after them the other functions would find no (or another) channel. Others keep
 * the registry's order in between.
 */
const FIRST = ['slack_post_message'];
const LAST = ['slack_rename_channel', 'slack_archive_channel'];

export interface InvokeLine {
  functionName: string;
  description: string;
  /** The shell command, arguments quoted for sh/bash/zsh. */
  command: string;
  /** Comment lines (without `#`) to print above the command. */
  notes: string[];
  /** True when the command holds a `<placeholder>` to replace before running it. */
  needsEditing: boolean;
}

export interface InvokeLineOptions {
  /** The command that runs the CLI, e.g. `npx tsx src/cli.ts`. */
  cli: string;
  configFile: string;
  destination: string;
}

/** Quotes a word for a POSIX shell when it holds anything but safe characters. */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

interface PropertySpec {
  type?: unknown;
  default?: unknown;
  enum?: unknown[];
  examples?: unknown[];
}

/** A value for an input the samples do not know, from its schema; a placeholder when nothing fits. */
function fromSchema(input: string, spec: PropertySpec): Sample {
  const candidate = spec.default ?? spec.enum?.[0] ?? spec.examples?.[0];
  if (typeof candidate === 'string' || typeof candidate === 'number' || typeof candidate === 'boolean') return { value: candidate };
  const type = Array.isArray(spec.type) ? spec.type.find((t) => t !== 'null') : spec.type;
  if (type === 'boolean') return { value: false };
  return { value: `<${input}>`, note: `<${input}>: no sample value is known for this input; put one in` };
}

function isPlaceholder(value: Sample['value']): boolean {
  return typeof value === 'string' && /^<[^>]+>$/.test(value);
}

function isStringInput(spec: PropertySpec): boolean {
  const types = Array.isArray(spec.type) ? spec.type.filter((t) => t !== 'null') : [spec.type];
  return types.length === 1 && types[0] === 'string';
}

/**
 * The `name=value` word for `--input`. `worker invoke` reads a value that parses as JSON
 * as JSON, so a string input whose value looks like a number (a Slack ts, `1712345678.123456`)
 * would arrive as a number and fail the schema: such values, and placeholders of string
 * inputs (whatever gets pasted there), are written as JSON strings.
 */
function inputWord(input: string, sample: Sample, spec: PropertySpec): string {
  const value = sample.value;
  if (typeof value === 'string' && isStringInput(spec)) {
    let parsesAsOther = false;
    try {
      parsesAsOther = typeof JSON.parse(value) !== 'string';
    } catch {
      // not JSON: passed as the string it is
    }
    if (parsesAsOther || isPlaceholder(value)) return `${input}=${JSON.stringify(value)}`;
  }
  return `${input}=${String(value)}`;
}

function inputsFor(fn: FunctionDefinition<unknown>): { input: string; sample: Sample; spec: PropertySpec }[] {
  const schema = fn.inputSchema as { properties?: Record<string, PropertySpec>; required?: string[] };
  const properties = schema.properties ?? {};
  const wanted = new Set([...(schema.required ?? []), ...(EXTRAS[fn.name] ?? [])]);
  // Schema order, so the line reads like `worker functions` lists the inputs.
  return Object.keys(properties)
    .filter((input) => wanted.has(input))
    .map((input) => {
      const spec = properties[input] ?? {};
      return { input, spec, sample: FUNCTION_SAMPLES[fn.name]?.[input] ?? SAMPLES[input] ?? fromSchema(input, spec) };
    });
}

function rank(name: string): number {
  if (FIRST.includes(name)) return FIRST.indexOf(name) - FIRST.length;
  if (LAST.includes(name)) return 1 + LAST.indexOf(name);
  return 0;
}

/** One line per registered function, in the order that runs cleanly top to bottom. */
export function invokeLines(plugins: readonly Plugin<any, any>[], opts: InvokeLineOptions): InvokeLine[] {
  // Internal functions (fn_slack's slack_inbound) take work from a plugin's own queue, never from a caller.
  const fns = plugins.flatMap((p) => (p.functions as FunctionDefinition<unknown>[]).filter((fn) => !fn.internal));
  // A stable sort keeps the registry's order among functions of equal rank.
  const ordered = fns.map((fn, i) => ({ fn, i })).sort((a, b) => rank(a.fn.name) - rank(b.fn.name) || a.i - b.i);
  return ordered.map(({ fn }) => {
    const inputs = inputsFor(fn);
    const words = [
      '--config-file',
      opts.configFile,
      'invoke',
      fn.name,
      '--destination',
      opts.destination,
      ...(INVOKE_TIMEOUTS[fn.name] !== undefined ? ['--timeout', String(INVOKE_TIMEOUTS[fn.name])] : []),
      ...inputs.flatMap(({ input, sample, spec }) => ['-i', inputWord(input, sample, spec)]),
    ];
    const notes = inputs.flatMap(({ sample }) => (sample.note ? [sample.note] : []));
    return {
      functionName: fn.name,
      description: fn.description,
      command: `${opts.cli} ${words.map(shellQuote).join(' ')}`,
      notes,
      needsEditing: inputs.some(({ sample }) => isPlaceholder(sample.value)),
    };
  });
}
