/**
 * Modals and slash commands, as the emulator serves them:
 *
 * - `views.open` takes a `trigger_id` and a modal `view`. A trigger is good for 3
 *   seconds and for one view (Slack: `expired_trigger_id`, `exchanged_trigger_id`,
 *   `invalid_trigger_id`). The emulator's triggers are `<ms since epoch>.<hex>` (the form
 *   its clicks and commands issue), so their age is read from them. The view must be a
 *   modal with a title (at most 24 characters), at most 100 blocks, `private_metadata`
 *   of at most 3000 characters and a `callback_id` of at most 255 (`invalid_arguments`).
 *   The answer is the stored view: `id`, `hash`, `state: {values: {}}`, `root_view_id`…
 * - `views.update` replaces an open view by `view_id`; a `hash` that is not the view's
 *   current one → `hash_conflict`; an unknown id → `not_found`. Each change gets a new hash.
 * - `submitView(user, viewId, values)` is a person pressing the modal's submit button:
 *   values by input block id (a static_select's chosen value, or a text input's text)
 *   become the view's `state.values` in Slack's shape, and a `view_submission` payload is
 *   delivered over Socket Mode. A required input left empty, or a view without a submit
 *   button, cannot be submitted (Slack's client does not let it).
 * - `slashCommand(user, channel, text)` is a person typing `/soar text`: the
 *   `slash_commands` payload (token, team_id, team_domain, channel_id, channel_name,
 *   user_id, user_name, command, text, api_app_id, response_url, trigger_id) is delivered
 *   over Socket Mode.
 */
import { randomBytes } from 'node:crypto';
import type { EmulatedChannel, EmulatedUser } from './slack-emulator.js';

export const TRIGGER_TTL_MS = 3000;

export class ViewError extends Error {
  constructor(readonly code: string) {
    super(code);
  }
}

export interface StoredView {
  id: string;
  hash: string;
  view: Record<string, any>;
  /** Who it was opened for (known for triggers this emulator issued for a command). */
  userId?: string;
  /** views.update calls it has seen. */
  updates: number;
}

export interface ViewsHost {
  readonly team: { id: string; domain: string };
  appId(): string;
  botId(): string;
  user(userId: string): EmulatedUser | undefined;
  channel(channelId: string): EmulatedChannel | undefined;
  /** A response_url for an answer to `userId` in `channelId` (slack-interactive.ts). */
  responseUrl(channelId: string, userId: string): string;
  deliver(type: 'interactive' | 'slash_commands', payload: Record<string, unknown>): void;
}

function newTrigger(now = Date.now()): string {
  return `${now}.${randomBytes(6).toString('hex')}`;
}

export class Views {
  readonly views = new Map<string, StoredView>();
  private readonly usedTriggers = new Set<string>();
  private readonly triggerUsers = new Map<string, string>();
  private nextId = 1;

  constructor(private readonly host: ViewsHost) {}

  open(params: Record<string, unknown>): Record<string, unknown> {
    const trigger = typeof params.trigger_id === 'string' ? params.trigger_id : '';
    const m = /^(\d{13})\.[0-9a-f]+$/.exec(trigger);
    if (!m) throw new ViewError('invalid_trigger_id');
    if (Date.now() - Number(m[1]) > TRIGGER_TTL_MS) throw new ViewError('expired_trigger_id');
    if (this.usedTriggers.has(trigger)) throw new ViewError('exchanged_trigger_id');
    const view = this.checkView(params.view);
    this.usedTriggers.add(trigger);
    const id = `V${String(this.nextId++).padStart(8, '0')}`;
    const userId = this.triggerUsers.get(trigger);
    const stored: StoredView = { id, hash: this.newHash(), view, updates: 0, ...(userId ? { userId } : {}) };
    this.views.set(id, stored);
    return { ok: true, view: this.render(stored) };
  }

  update(params: Record<string, unknown>): Record<string, unknown> {
    const stored = this.views.get(typeof params.view_id === 'string' ? params.view_id : '');
    if (!stored) throw new ViewError('not_found');
    if (typeof params.hash === 'string' && params.hash !== stored.hash) throw new ViewError('hash_conflict');
    stored.view = this.checkView(params.view);
    stored.hash = this.newHash();
    stored.updates++;
    return { ok: true, view: this.render(stored) };
  }

  /** A person submits the open modal `viewId` with `values` by input block id; returns the payload delivered. */
  submit(userId: string, viewId: string, values: Record<string, string>): Record<string, unknown> {
    const user = this.host.user(userId);
    if (!user) throw new Error(`no user ${userId}`);
    const stored = this.views.get(viewId);
    if (!stored) throw new Error(`no view ${viewId}`);
    if (!stored.view.submit) throw new Error(`view ${viewId} has no submit button`);
    const state: Record<string, Record<string, unknown>> = {};
    for (const block of (stored.view.blocks ?? []) as Record<string, any>[]) {
      if (block.type !== 'input') continue;
      const el = block.element as Record<string, any>;
      const given = values[block.block_id];
      if ((given === undefined || given === '') && block.optional !== true) throw new Error(`input ${block.block_id} is required`);
      let value: Record<string, unknown>;
      if (el.type === 'static_select') {
        const option = (el.options as Record<string, any>[]).find((o) => o.value === given);
        if (given !== undefined && !option) throw new Error(`input ${block.block_id} has no option ${given}`);
        value = { type: 'static_select', selected_option: option ? { text: option.text, value: option.value } : null };
      } else if (el.type === 'plain_text_input') {
        if (typeof el.max_length === 'number' && (given ?? '').length > el.max_length)
          throw new Error(`input ${block.block_id} is too long`);
        value = { type: 'plain_text_input', value: given ?? null };
      } else {
        throw new Error(`submitting a ${String(el.type)} is not emulated`);
      }
      state[block.block_id] = { [el.action_id]: value };
    }
    const payload: Record<string, unknown> = {
      type: 'view_submission',
      team: { id: this.host.team.id, domain: this.host.team.domain },
      user: { id: user.id, username: user.name, name: user.name, team_id: this.host.team.id },
      api_app_id: this.host.appId(),
      token: 'emulated-verification-token',
      trigger_id: newTrigger(),
      view: { ...this.render(stored), state: { values: state } },
      response_urls: [],
      is_enterprise_install: false,
      enterprise: null,
    };
    this.host.deliver('interactive', payload);
    return payload;
  }

  /** A person types `command text` in a channel; returns the payload delivered. */
  slashCommand(userId: string, channelId: string, text: string, command = '/soar'): Record<string, unknown> {
    const user = this.host.user(userId);
    if (!user) throw new Error(`no user ${userId}`);
    const channel = this.host.channel(channelId);
    if (!channel) throw new Error(`no channel ${channelId}`);
    const trigger = newTrigger();
    this.triggerUsers.set(trigger, userId);
    const payload: Record<string, unknown> = {
      token: 'emulated-verification-token',
      team_id: this.host.team.id,
      team_domain: this.host.team.domain,
      channel_id: channelId,
      channel_name: channel.isIm ? 'directmessage' : channel.name,
      user_id: userId,
      user_name: user.name,
      command,
      text,
      api_app_id: this.host.appId(),
      is_enterprise_install: 'false',
      response_url: this.host.responseUrl(channelId, userId),
      trigger_id: trigger,
    };
    this.host.deliver('slash_commands', payload);
    return payload;
  }

  private checkView(raw: unknown): Record<string, any> {
    let view: unknown = raw;
    if (typeof raw === 'string') {
      try {
        view = JSON.parse(raw);
      } catch {
        throw new ViewError('invalid_arguments');
      }
    }
    const v = view as Record<string, any>;
    if (!v || typeof v !== 'object' || v.type !== 'modal') throw new ViewError('invalid_arguments');
    if (typeof v.title?.text !== 'string' || v.title.text.length > 24) throw new ViewError('invalid_arguments');
    if (!Array.isArray(v.blocks) || v.blocks.length > 100) throw new ViewError('invalid_arguments');
    if (v.private_metadata !== undefined && (typeof v.private_metadata !== 'string' || v.private_metadata.length > 3000)) {
      throw new ViewError('invalid_arguments');
    }
    if (v.callback_id !== undefined && (typeof v.callback_id !== 'string' || v.callback_id.length > 255))
      throw new ViewError('invalid_arguments');
    return v;
  }

  private render(stored: StoredView): Record<string, unknown> {
    return {
      id: stored.id,
      team_id: this.host.team.id,
      type: 'modal',
      callback_id: stored.view.callback_id ?? '',
      private_metadata: stored.view.private_metadata ?? '',
      title: stored.view.title,
      submit: stored.view.submit ?? null,
      close: stored.view.close ?? null,
      blocks: stored.view.blocks,
      state: { values: {} },
      hash: stored.hash,
      root_view_id: stored.id,
      previous_view_id: null,
      app_id: this.host.appId(),
      bot_id: this.host.botId(),
    };
  }

  private newHash(): string {
    return `${Math.floor(Date.now() / 1000)}.${randomBytes(4).toString('hex')}`;
  }
}
