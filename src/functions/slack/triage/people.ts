/**
 * Who is acting: a Slack user matched to a platform user by email (`users.info`, which
 * needs `users:read.email` to show emails). Slack profiles are cached per worker for a
 * while (a click storm costs one users.info per person); the platform caches its own
 * users (SOAR) or needs none (local).
 *
 * No match is an answer, not an error: the caller tells the person why and changes
 * nothing. The reasons say what to fix (a bot, no email visible, no platform user).
 */
import type { CallOptions } from '../slack-client.js';
import type { SlackState } from '../state.js';
import type { SlackUser } from '../slack-types.js';
import type { Platform, PlatformUser } from '../../../platforms/platform.js';

/** A Slack user as the triage notes and messages name them. */
export interface SlackPerson {
  id: string;
  /** Real name, else display name, else handle. */
  name: string;
  email: string | null;
  isBot: boolean;
}

export type ActorMatch = { ok: true; person: SlackPerson; actor: PlatformUser } | { ok: false; person?: SlackPerson; reason: string };

const PROFILE_TTL_MS = 10 * 60_000;
const MAX_PROFILES = 5000;

class ProfileCache {
  private readonly entries = new Map<string, { at: number; person: SlackPerson }>();

  constructor(private readonly now: () => number = Date.now) {}

  get(id: string): SlackPerson | undefined {
    const hit = this.entries.get(id);
    if (!hit || this.now() - hit.at > PROFILE_TTL_MS) return undefined;
    return hit.person;
  }

  set(person: SlackPerson): void {
    this.entries.delete(person.id);
    if (this.entries.size >= MAX_PROFILES) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(person.id, { at: this.now(), person });
  }
}

const caches = new WeakMap<SlackState, ProfileCache>();

function str(v: unknown): string {
  return typeof v === 'string' ? v.trim() : '';
}

/** The Slack user's name and email (users.info), cached. */
export async function slackPerson(state: SlackState, userId: string, callOpts: CallOptions): Promise<SlackPerson> {
  let cache = caches.get(state);
  if (!cache) caches.set(state, (cache = new ProfileCache()));
  const hit = cache.get(userId);
  if (hit) return hit;
  const res = await state.client.call('users.info', { user: userId }, { ...callOpts, what: `user ${userId}` });
  const user: Partial<SlackUser> = res.user ?? {};
  const profile = (user.profile ?? {}) as Record<string, unknown>;
  const person: SlackPerson = {
    id: userId,
    name: str(user.real_name) || str(profile.real_name) || str(profile.display_name) || str(user.name) || userId,
    email: str(profile.email) || null,
    isBot: user.is_bot === true,
  };
  cache.set(person);
  return person;
}

/** Matches the Slack user to a platform user by email. */
export async function matchActor(state: SlackState, platform: Platform, userId: string, callOpts: CallOptions): Promise<ActorMatch> {
  const person = await slackPerson(state, userId, callOpts);
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
