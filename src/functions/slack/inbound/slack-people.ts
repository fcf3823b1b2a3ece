/**
 * Who a Slack user is (name and email from users.info), remembered for an hour per
 * process: a busy incident channel has few authors and many messages, and users.info is
 * a Tier 4 method shared with every other lookup.
 */
import type { CallOptions } from '../slack-client.js';
import { isSlackError } from '../slack-errors.js';
import type { SlackState } from '../state.js';

export interface SlackPerson {
  id: string;
  /** The real name, else the display name, else the handle; the id when Slack has none. */
  name: string;
  /** Null when Slack gives none (no users:read.email scope, a bot, a guest without one). */
  email: string | null;
}

const TTL_MS = 60 * 60 * 1000;
const MAX_PEOPLE = 5000;

interface Remembered {
  person: SlackPerson;
  at: number;
}

const directories = new WeakMap<SlackState, Map<string, Remembered>>();

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** The person behind `userId`; a user Slack does not know is named by the id. */
export async function slackPerson(state: SlackState, userId: string, callOpts: CallOptions = {}, now = Date.now()): Promise<SlackPerson> {
  let people = directories.get(state);
  if (!people) directories.set(state, (people = new Map()));
  const known = people.get(userId);
  if (known && now - known.at < TTL_MS) return known.person;

  let person: SlackPerson;
  try {
    const res = await state.client.call('users.info', { user: userId }, callOpts);
    const user = res.user ?? { id: userId };
    const profile = user.profile ?? {};
    person = {
      id: userId,
      name: text(profile.real_name) ?? text(user.real_name) ?? text(profile.display_name) ?? text(user.name) ?? userId,
      email: text(profile.email) ?? null,
    };
  } catch (err) {
    // A departed or foreign user: name them by id rather than lose the message.
    if (!isSlackError(err, 'user_not_found')) throw err;
    person = { id: userId, name: userId, email: null };
  }
  people.delete(userId);
  people.set(userId, { person, at: now });
  if (people.size > MAX_PEOPLE) people.delete(people.keys().next().value as string);
  return person;
}
