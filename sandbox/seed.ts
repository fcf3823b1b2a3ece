/**
 * What the sandbox starts with: a few people (with emails, so participants can be
 * invited by email), a couple of channels with some talk in them, and a local platform
 * holding one incident with an attachment and an artifact, so that every function has
 * something to work on.
 *
 * People talk through Slack's own Web API (chat.postMessage with a user token), as a
 * person would, rather than by writing the emulator's state directly: the messages the
 * worker exports later are ones a real workspace could hold.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { SlackEmulator } from '../test/support/slack-emulator.js';

export const SANDBOX_USERS = [
  { name: 'alice', real_name: 'Alice Analyst', email: 'alice@example.com' },
  { name: 'bob', real_name: 'Bob Responder', email: 'bob@example.com' },
  { name: 'carol', real_name: 'Carol Lead', email: 'carol@example.com' },
] as const;

export const SANDBOX_INCIDENT = {
  id: 2103,
  name: 'Phishing wave',
  attachmentId: 1,
  attachmentFile: 'reported-email-headers.txt',
  artifactId: 1,
  artifactFile: 'proxy.log',
} as const;

/** Scopes of each person's user token: enough to read and talk in channels they are in. */
const USER_SCOPES = ['chat:write', 'channels:read', 'channels:history', 'groups:read', 'groups:history', 'users:read'];

export interface SeededPerson {
  id: string;
  name: string;
  email: string;
  /** A user token (`xoxp-…`) acting as this person, to type in channels through the API. */
  token: string;
}

export interface SeededWorkspace {
  people: SeededPerson[];
  channels: { id: string; name: string; isPrivate: boolean }[];
}

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** Posts as a person through the emulator's Web API; throws with Slack's error code. */
async function say(emu: SlackEmulator, token: string, channel: string, text: string): Promise<void> {
  const res = await fetch(`${emu.apiUrl}chat.postMessage`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-8' },
    body: new URLSearchParams({ channel, text }).toString(),
  });
  const body = (await res.json()) as { ok: boolean; error?: string };
  if (!body.ok) throw new Error(`seeding #${channel}: chat.postMessage failed: ${String(body.error)}`);
}

/** Adds the people and channels to a fresh emulator. */
export async function seedWorkspace(emu: SlackEmulator): Promise<SeededWorkspace> {
  const people: SeededPerson[] = SANDBOX_USERS.map((u) => {
    const user = emu.addUser({ name: u.name, real_name: u.real_name, email: u.email });
    const token = `xoxp-sandbox-${u.name}`;
    emu.addToken(token, { scopes: USER_SCOPES, userType: 'user', botUserId: user.id });
    return { id: user.id, name: u.name, email: u.email, token };
  });
  const [alice, bob, carol] = people as [SeededPerson, SeededPerson, SeededPerson];
  // The bot is in #soc-alerts (as an alerting app would be) but not in #leads, a
  // private channel it has not been invited to: as in Slack, it cannot see that one.
  const alerts = emu.seedChannel({ name: 'soc-alerts', members: [alice.id, bob.id, emu.botUserId], creator: alice.id });
  const leads = emu.seedChannel({ name: 'leads', isPrivate: true, members: [carol.id, alice.id], creator: carol.id });
  await say(emu, alice.token, 'soc-alerts', 'Several people reported the same "invoice overdue" email this morning.');
  await say(emu, bob.token, 'soc-alerts', 'Proxy logs show three clicks on the link. Opening incident 2103.');
  await say(emu, carol.token, 'leads', 'Keep me posted on 2103.');
  const general = emu.channels().find((c) => c.isGeneral);
  return {
    people,
    channels: [general, alerts, leads]
      .filter((c): c is NonNullable<typeof c> => Boolean(c))
      .map((c) => ({ id: c.id, name: c.name, isPrivate: c.isPrivate })),
  };
}

function writePrivate(file: string, content: string): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: DIR_MODE });
  fs.writeFileSync(file, content, { mode: FILE_MODE });
}

/**
 * Lays out the local platform (README: The local platform): incident 2103 with an
 * attachment (for slack_post_attachment) and a log-file artifact. Archive exports are
 * saved next to the attachment as incidents/2103/attachments/2/….
 */
export function seedPlatform(platformDir: string): void {
  const inc = path.join(platformDir, 'incidents', String(SANDBOX_INCIDENT.id));
  writePrivate(
    path.join(inc, 'incident.json'),
    `${JSON.stringify(
      {
        id: SANDBOX_INCIDENT.id,
        name: SANDBOX_INCIDENT.name,
        description: 'Users reported an "invoice overdue" email with a credential-phishing link.',
        severity: 'High',
        status: 'Active',
        owner: SANDBOX_USERS[0].email,
        resolution: null,
        resolution_summary: null,
      },
      null,
      2,
    )}\n`,
  );
  writePrivate(
    path.join(inc, 'attachments', String(SANDBOX_INCIDENT.attachmentId), SANDBOX_INCIDENT.attachmentFile),
    [
      'From: "Accounts" <billing@invoices-overdue.example>',
      'To: alice@example.com',
      'Subject: Invoice overdue - action required',
      'Received: from mail.invoices-overdue.example (203.0.113.7)',
      'X-Mailer: bulk-sender 2.1',
      '',
    ].join('\n'),
  );
  const art = path.join(inc, 'artifacts', String(SANDBOX_INCIDENT.artifactId));
  writePrivate(path.join(art, 'artifact.json'), `${JSON.stringify({ type: 'Log File', value: SANDBOX_INCIDENT.artifactFile })}\n`);
  writePrivate(
    path.join(art, SANDBOX_INCIDENT.artifactFile),
    [
      '2026-12-07T08:01:12Z 10.0.4.17 GET http://invoices-overdue.example/login 200',
      '2026-12-07T08:03:40Z 10.0.4.22 GET http://invoices-overdue.example/login 200',
      '2026-12-07T08:09:05Z 10.0.5.3 GET http://invoices-overdue.example/login 200',
      '',
    ].join('\n'),
  );
}
