/**
 * Who is acting: a Slack user matched to a platform user by email (`users.info`, which
 * needs `users:read.email` to show emails). Slack profiles come from the worker's people
 * cache (../people.ts), at most 10 minutes old (a click storm costs one users.info per
 * person); the platform caches its own users (SOAR) or needs none (local).
 *
 * No match is an answer, not an error: the caller tells the person why and changes
 * nothing. The reasons say what to fix (a bot, no email visible, no platform user).
 */
import type { CallOptions } from '../slack-client.js';
import type { SlackState } from '../state.js';
import type { SlackPerson } from '../people.js';
import type { Platform, PlatformUser } from '../../../platforms/platform.js';

export type ActorMatch = { ok: true; person: SlackPerson; actor: PlatformUser } | { ok: false; person?: SlackPerson; reason: string };

/** How old a users.info answer may be to match an actor by email: a changed email counts within 10 minutes. */
const ACTOR_MAX_AGE_MS = 10 * 60_000;

/** Matches the Slack user to a platform user by email. */
export async function matchActor(state: SlackState, platform: Platform, userId: string, callOpts: CallOptions): Promise<ActorMatch> {
  const person = await state.people.get(userId, ACTOR_MAX_AGE_MS, callOpts);
  if (person.isBot) return { ok: false, person, reason: 'bots cannot triage incidents' };
  if (!person.email) {
    return {
      ok: false,
      person,
      reason:
        'Slack shows no email for you (the app needs the users:read.email scope, and your profile an email), so you cannot be matched to a user of the incident platform',
    };
  }
  const actor = await platform.findUserByEmail(person.email);
  if (!actor) {
    return {
      ok: false,
      person,
      reason: `no user of the incident platform has your email (${person.email}); ask an administrator to add you`,
    };
  }
  return { ok: true, person, actor };
}
