/**
 * What the sandbox prints once it is ready: where everything is, who is in the
 * workspace, one ready-to-paste `worker invoke` line per function, how to type in a
 * channel as a person (mirrored into a note on the incident) and how to click a button
 * as a person (on the view's page, or with curl to its /click).
 */
import { shellQuote } from './invocations.js';
import type { SandboxInfo } from './sandbox.js';
import { SANDBOX_INCIDENT } from './seed.js';

export function banner(info: SandboxInfo, repoRoot: string, kept: boolean): string {
  const people = info.workspace.people.map((p) => p.email).join(', ');
  const channels = info.workspace.channels.map((c) => `#${c.name}${c.isPrivate ? ' (private; the bot is not in it)' : ''}`).join(', ');
  const inc = SANDBOX_INCIDENT;
  const alice = info.workspace.people[0];
  const lines: string[] = [
    '',
    `Sandbox ready: the worker consumes queue ${info.destination}; Slack is emulated, no Slack account needed.`,
    '',
    `  What landed:   ${info.viewUrl}   (channels, messages, files; click buttons there; JSON at channels.json, files.json, platform.json)`,
    `  Slack Web API: ${info.slackApiUrl}   (emulated)`,
    `  Config:        ${info.configFile}`,
    `  Platform dir:  ${info.platformDir}`,
    `                 incident ${inc.id}: attachment ${inc.attachmentId} (${inc.attachmentFile}), artifact ${inc.artifactId} (${inc.artifactFile});`,
    `                 archive exports are saved as incidents/${inc.id}/attachments/<next id>/slack_msg_export_channel_<name>.txt`,
    `  Worker log:    ${info.logFile}`,
    `  People:        ${people}`,
    `  Channels:      ${channels}`,
    '',
    `Call each function, top to bottom, from ${repoRoot} in another terminal`,
    '(after `npm run build`, `node dist/src/cli.js` works in place of `npx tsx src/cli.ts`):',
    '',
  ];
  for (const l of info.lines) {
    lines.push(`  # ${l.functionName}: ${l.description}`);
    for (const note of l.notes) lines.push(`  #   ${note}`);
    lines.push(`  ${l.command}`, '');
  }
  if (alice) {
    const curl = [
      'curl',
      '-s',
      `${info.slackApiUrl}chat.postMessage`,
      '-H',
      `Authorization: Bearer ${alice.token}`,
      '--data-urlencode',
      `channel=inc-${inc.id}`,
      '--data-urlencode',
      'text=Blocked the sender domain at the mail gateway',
    ];
    lines.push(
      `Type in a channel as a person (Slack's chat.postMessage with ${alice.email}'s user token; each person's is xoxp-sandbox-<name>);`,
      'what people say shows in the view and in the archive export, and, in the incident\'s channel (after slack_post_message),',
      `the worker receives it over Socket Mode and adds it as a note (platform dir: incidents/${inc.id}/notes/):`,
      '',
      `  ${curl.map(shellQuote).join(' ')}`,
      '',
    );
  }
  const bob = info.workspace.people[1];
  if (bob) lines.push(...clickLines(info, bob.name));
  lines.push(
    kept
      ? `Ctrl-C stops the worker and the emulator; ${info.dir} is kept.`
      : `Ctrl-C stops the worker and the emulator and removes ${info.dir} (--keep keeps it).`,
    '',
  );
  return lines.join('\n');
}

/** A curl to the view's /click, each field url-encoded as the page's form sends it. */
function clickCurl(viewUrl: string, fields: Record<string, string>): string {
  const words = ['curl', '-s', `${viewUrl}click`, ...Object.entries(fields).flatMap(([k, v]) => ['--data-urlencode', `${k}=${v}`])];
  return words.map(shellQuote).join(' ');
}

/** How to click as a person: the page, or these curls (the answers are the sandbox's own samples). */
function clickLines(info: SandboxInfo, who: string): string[] {
  const channel = `inc-${SANDBOX_INCIDENT.id}`;
  return [
    `Click as a person: on ${info.viewUrl} pick who acts at the top and press a message's buttons; the worker gets the click`,
    "over Socket Mode as Slack's block_actions. Or from a terminal (each clicks the newest message in the channel that has it):",
    '',
    `  # slack_post_message's triage card: ${who} takes incident ${SANDBOX_INCIDENT.id} (its owner in incidents/${SANDBOX_INCIDENT.id}/incident.json)`,
    `  ${clickCurl(info.viewUrl, { as: who, channel, button: 'Assign to me' })}`,
    '  # the same card: set the severity',
    `  ${clickCurl(info.viewUrl, { as: who, channel, action_id: 'triage:severity', option: 'Low' })}`,
    "  # slack_ask's question: answer it (the waiting `invoke slack_ask` prints the answer)",
    `  ${clickCurl(info.viewUrl, { as: who, channel, button: 'Reject' })}`,
    '',
    'The card\'s "Close…" opens a modal (views.open): fill it in and submit it on the page, where open modals are listed.',
    '',
  ];
}
