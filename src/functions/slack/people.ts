/**
 * Who a Slack user is (users.info: name, email, bot or not), remembered per worker: a busy
 * incident channel has few authors and many messages, a click storm few people and many
 * clicks, and users.info is a Tier 4 method shared with every other lookup. One cache for
 * every reader (mirroring names authors, triage matches actors by email); each reader says
 * how old an answer it accepts, so one that decides by email can ask for a fresher one
 * than one that only prints a name, and any fresh lookup serves both.
 */
import type { CallOptions, SlackClient } from './slack-client.js';
import { isSlackError } from './slack-errors.js';
import type { SlackUser } from './slack-types.js';

export interface SlackPerson {
  id: string;
  /** The real name, else the display name, else the handle; the id when Slack has none. */
  name: string;
  /** Null when Slack gives none (no users:read.email scope, a bot, a guest without one, a user Slack does not know). */
  email: string | null;
  isBot: boolean;
}

/** People remembered at most: the oldest lookup goes first. */
const MAX_PEOPLE = 5000;

function text(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

export class SlackPeople {
  private readonly entries = new Map<string, { person: SlackPerson; at: number }>();

  constructor(
    private readonly client: SlackClient,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The person behind `userId`, from a lookup at most `maxAgeMs` old (else users.info now).
   * A user Slack does not know (departed, foreign) is named by the id, without email.
   */
  async get(userId: string, maxAgeMs: number, callOpts: CallOptions = {}): Promise<SlackPerson> {
    const known = this.entries.get(userId);
    if (known && this.now() - known.at < maxAgeMs) return known.person;
    let person: SlackPerson;
    try {
      const res = await this.client.call('users.info', { user: userId }, { ...callOpts, what: `user ${userId}` });
      const user: Partial<SlackUser> = res.user ?? {};
      const profile = (user.profile ?? {}) as Record<string, unknown>;
      person = {
        id: userId,
        name: text(profile.real_name) ?? text(user.real_name) ?? text(profile.display_name) ?? text(user.name) ?? userId,
        email: text(profile.email) ?? null,
        isBot: user.is_bot === true,
      };
    } catch (err) {
      if (!isSlackError(err, 'user_not_found')) throw err;
      person = { id: userId, name: userId, email: null, isBot: false };
    }
    this.entries.delete(userId);
    this.entries.set(userId, { person, at: this.now() });
    if (this.entries.size > MAX_PEOPLE) this.entries.delete(this.entries.keys().next().value as string);
    return person;
  }
}
