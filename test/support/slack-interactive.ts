/**
 * Interactivity, as the emulator serves it: a person clicks a button or picks an option
 * of a static_select in a stored message, Slack sends the app a `block_actions` payload
 * (over Socket Mode, as an `interactive` envelope), and the app answers through the
 * payload's `response_url` or the Web API (`chat.update`, `chat.postEphemeral`).
 *
 * Behaviour kept from Slack's documentation (Handling user interaction; response_url):
 * - the payload carries `type: "block_actions"`, `user` {id, username, name, team_id},
 *   `api_app_id`, `token`, `container` {type: "message", message_ts, channel_id,
 *   is_ephemeral}, `trigger_id`, `team` {id, domain}, `channel` {id, name}, the whole
 *   `message`, `state`, `response_url` and `actions[]` (the element's type, action_id,
 *   block_id, text/value for a button or selected_option for a select, and `action_ts`);
 * - a `response_url` takes JSON: `replace_original` replaces the message the action came
 *   from, `delete_original` deletes it, otherwise a new message is posted, ephemeral to
 *   the clicking user unless `response_type: "in_channel"`;
 * - each URL may be used up to 5 times within 30 minutes; a sixth use answers
 *   `used_url`, a late one `expired_url`.
 * Ephemeral messages (response_url or `chat.postEphemeral`) are kept per user, not in
 * the channel's history, as Slack never stores them.
 */
import { randomBytes } from 'node:crypto';
import type { EmulatedChannel, EmulatedMessage, EmulatedUser } from './slack-emulator.js';

/** What one response_url accepts before it is spent. */
export const RESPONSE_URL_MAX_USES = 5;
export const RESPONSE_URL_TTL_MS = 30 * 60 * 1000;

/** What the interactive part needs from the emulator that owns it. */
export interface InteractiveHost {
  readonly baseUrl: string;
  readonly team: { id: string; domain: string };
  appId(): string;
  user(userId: string): EmulatedUser | undefined;
  channel(channelId: string): EmulatedChannel | undefined;
  message(channelId: string, ts: string): EmulatedMessage | undefined;
  /** Replaces a stored message's text and blocks in place (as the app's own edit). */
  replaceMessage(channelId: string, ts: string, text: string, blocks: unknown[] | undefined): void;
  deleteMessage(channelId: string, ts: string): void;
  /** Posts a new message as the bot (a response with `response_type: "in_channel"`). */
  postAsBot(channelId: string, text: string, blocks: unknown[] | undefined, threadTs?: string): EmulatedMessage;
  /** A new unique Slack timestamp. */
  nextTs(): string;
  /** Sends an `interactive` envelope over Socket Mode. */
  deliverInteractive(payload: Record<string, unknown>): void;
}

/** An ephemeral message one user saw. */
export interface EphemeralMessage {
  user: string;
  channel: string;
  text: string;
  blocks?: unknown[];
  /** The ts Slack answers for it (not stored in the channel's history). */
  messageTs: string;
  threadTs?: string;
  via: 'chat.postEphemeral' | 'response_url';
}

/** One use of a response_url, as the emulator recorded it. */
export interface ResponseUse {
  url: string;
  body: Record<string, unknown>;
  /** What the emulator answered: `ok`, or the error. */
  outcome: 'ok' | string;
}

export interface ClickOptions {
  /** The chosen option's value (static_select). */
  selectedOption?: string;
  /** Overrides the button's value (a button without one sends none). */
  value?: string;
}

interface ResponseTarget {
  channelId: string;
  messageTs: string;
  userId: string;
  createdAt: number;
  uses: number;
}

type Element = Record<string, unknown> & { type?: string; action_id?: string };

const PATH_PREFIX = '/actions/';

export class Interactive {
  private readonly targets = new Map<string, ResponseTarget>();
  private readonly ephemeral: EphemeralMessage[] = [];
  private readonly uses: ResponseUse[] = [];
  private actionClock = 0;

  constructor(private readonly host: InteractiveHost) {}

  /**
   * `userId` clicks the element `actionId` of the message `messageTs` in `channelId`: builds
   * the `block_actions` payload Slack sends and delivers it. Throws when the message, the
   * element or the chosen option does not exist (a person cannot click what is not there).
   */
  click(userId: string, channelId: string, messageTs: string, actionId: string, opts: ClickOptions = {}): Record<string, unknown> {
    const user = this.host.user(userId);
    if (!user) throw new Error(`no user ${userId}`);
    const channel = this.host.channel(channelId);
    if (!channel) throw new Error(`no channel ${channelId}`);
    if (!channel.members.has(userId) && channel.isPrivate) throw new Error(`${userId} cannot see ${channelId}`);
    const message = this.host.message(channelId, messageTs);
    if (!message) throw new Error(`no message ${messageTs} in ${channelId}`);
    const found = findElement(message.blocks ?? [], actionId);
    if (!found) throw new Error(`message ${messageTs} has no element with action_id ${actionId}`);
    const action = this.action(found.element, found.blockId, opts);
    const responseUrl = this.newResponseUrl({ channelId, messageTs, userId, createdAt: Date.now(), uses: 0 });
    const payload: Record<string, unknown> = {
      type: 'block_actions',
      user: { id: user.id, username: user.name, name: user.name, team_id: this.host.team.id },
      api_app_id: this.host.appId(),
      token: 'emulated-verification-token',
      container: { type: 'message', message_ts: messageTs, channel_id: channelId, is_ephemeral: false },
      trigger_id: `${Date.now()}.${randomBytes(6).toString('hex')}`,
      team: { id: this.host.team.id, domain: this.host.team.domain },
      enterprise: null,
      is_enterprise_install: false,
      channel: { id: channelId, name: channel.isIm ? 'directmessage' : channel.name },
      message: JSON.parse(JSON.stringify(message)) as Record<string, unknown>,
      state: { values: {} },
      response_url: responseUrl,
      actions: [action],
    };
    this.host.deliverInteractive(payload);
    return payload;
  }

  private action(el: Element, blockId: string | undefined, opts: ClickOptions): Record<string, unknown> {
    const base: Record<string, unknown> = { type: el.type, action_id: el.action_id, block_id: blockId, action_ts: this.actionTs() };
    if (el.type === 'button') {
      const value = opts.value ?? (typeof el.value === 'string' ? el.value : undefined);
      return { ...base, text: el.text, ...(value !== undefined ? { value } : {}), ...(el.style ? { style: el.style } : {}) };
    }
    if (el.type === 'static_select') {
      const options = Array.isArray(el.options) ? (el.options as { value?: string; text?: unknown }[]) : [];
      const chosen = options.find((o) => o.value === opts.selectedOption);
      if (!chosen) throw new Error(`static_select ${String(el.action_id)} has no option ${String(opts.selectedOption)}`);
      return { ...base, selected_option: { text: chosen.text, value: chosen.value }, ...(el.placeholder ? { placeholder: el.placeholder } : {}) };
    }
    throw new Error(`clicking a ${String(el.type)} is not emulated`);
  }

  /** A unique action_ts (Slack's are "seconds.micros" strings). */
  private actionTs(): string {
    const now = Date.now() * 1000;
    this.actionClock = now > this.actionClock ? now : this.actionClock + 1;
    return `${Math.floor(this.actionClock / 1e6)}.${String(this.actionClock % 1e6).padStart(6, '0')}`;
  }

  private newResponseUrl(target: ResponseTarget): string {
    const path = `${PATH_PREFIX}${this.host.team.id}/${Date.now()}/${randomBytes(12).toString('hex')}`;
    this.targets.set(path, target);
    return `${this.host.baseUrl}${path}`;
  }

  /** A response_url for an answer to `userId` in `channelId` that no message led to (a slash command). */
  responseUrlFor(channelId: string, userId: string): string {
    return this.newResponseUrl({ channelId, messageTs: '', userId, createdAt: Date.now(), uses: 0 });
  }

  /** True when `path` is a response_url's path. */
  handles(path: string): boolean {
    return path.startsWith(PATH_PREFIX);
  }

  /** A POST to a response_url: answers `{status, body}` (Slack answers JSON `{ok}`). */
  respond(path: string, raw: Buffer): { status: number; body: Record<string, unknown> } {
    const target = this.targets.get(path);
    const url = `${this.host.baseUrl}${path}`;
    const answer = (status: number, outcome: string, body: Record<string, unknown>) => {
      this.uses.push({ url, body, outcome });
      return { status, body: outcome === 'ok' ? { ok: true } : { ok: false, error: outcome } };
    };
    let body: Record<string, unknown>;
    try {
      const parsed: unknown = JSON.parse(raw.toString('utf8'));
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return answer(400, 'invalid_payload', {});
      body = parsed as Record<string, unknown>;
    } catch {
      return answer(400, 'invalid_payload', {});
    }
    if (!target) return answer(404, 'no_such_url', body);
    if (Date.now() - target.createdAt > RESPONSE_URL_TTL_MS) return answer(404, 'expired_url', body);
    if (target.uses >= RESPONSE_URL_MAX_USES) return answer(404, 'used_url', body);
    const text = typeof body.text === 'string' ? body.text : '';
    const blocks = Array.isArray(body.blocks) ? (body.blocks as unknown[]) : undefined;
    const isTrue = (v: unknown) => v === true || v === 'true';
    if (isTrue(body.delete_original)) {
      if (!this.host.message(target.channelId, target.messageTs)) return answer(404, 'message_not_found', body);
      this.host.deleteMessage(target.channelId, target.messageTs);
    } else if (text.trim() === '' && !blocks?.length) {
      return answer(400, 'no_text', body);
    } else if (isTrue(body.replace_original)) {
      if (!this.host.message(target.channelId, target.messageTs)) return answer(404, 'message_not_found', body);
      this.host.replaceMessage(target.channelId, target.messageTs, text, blocks);
    } else if (body.response_type === 'in_channel') {
      this.host.postAsBot(target.channelId, text, blocks, typeof body.thread_ts === 'string' ? body.thread_ts : undefined);
    } else {
      this.recordEphemeral({ user: target.userId, channel: target.channelId, text, blocks, messageTs: this.host.nextTs(), via: 'response_url' });
    }
    target.uses++;
    return answer(200, 'ok', body);
  }

  recordEphemeral(m: EphemeralMessage): void {
    this.ephemeral.push(m);
  }

  /** Ephemeral messages shown so far, oldest first (to one user, when given). */
  ephemerals(userId?: string): EphemeralMessage[] {
    return this.ephemeral.filter((m) => userId === undefined || m.user === userId);
  }

  /** Every use of a response_url, oldest first. */
  responses(): ResponseUse[] {
    return this.uses.slice();
  }

  /** Makes every response_url issued so far older than `ms` (to test expiry). */
  ageResponseUrls(ms: number): void {
    for (const t of this.targets.values()) t.createdAt -= ms;
  }
}

/** The interactive element with `actionId` in an `actions` block or a section's accessory. */
function findElement(blocks: unknown[], actionId: string): { element: Element; blockId: string | undefined } | undefined {
  for (const raw of blocks) {
    const block = raw as { type?: string; block_id?: string; elements?: Element[]; accessory?: Element };
    const candidates = block.type === 'actions' ? (block.elements ?? []) : block.accessory ? [block.accessory] : [];
    const element = candidates.find((e) => e.action_id === actionId);
    if (element) return { element, blockId: block.block_id };
  }
  return undefined;
}
