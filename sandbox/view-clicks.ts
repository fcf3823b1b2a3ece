/**
 * What the sandbox's view lets a person do, as a person does it in Slack: click a
 * message's button, pick an option of its select menu, fill in and submit a modal the
 * worker opened. Each goes through the emulator's own interactive delivery (the
 * `block_actions` or `view_submission` payload Slack sends, over the worker's Socket Mode
 * connection), so the worker handles it exactly as it would a real click.
 *
 * A click names the person (`as`: a seeded person's name, id or email), the channel (id
 * or name) and the element: `action_id`, or `button` (the label a person sees). Without
 * `ts` the newest message of the channel (thread replies included) holding that element
 * is clicked, which is what a person scrolling the channel would do.
 */
import type { EmulatedMessage, EmulatedUser, SlackEmulator } from '../test/support/slack-emulator.js';

/** A clickable element of a message, shaped for reading. */
export interface ViewElement {
  type: 'button' | 'static_select';
  action_id: string;
  /** A button's label, a select's placeholder. */
  label: string;
  /** A select's options (label and value). */
  options?: { label: string; value: string }[];
  /** A select's current value (its initial_option), when it shows one. */
  selected?: string;
}

/** An input of a modal, shaped for a form. */
export interface ModalInput {
  block_id: string;
  label: string;
  type: 'static_select' | 'plain_text_input';
  optional: boolean;
  multiline: boolean;
  options?: { label: string; value: string }[];
}

/** A modal the worker opened (views.open) and nobody submitted or closed yet on this view. */
export interface OpenModal {
  id: string;
  title: string;
  /** Its text blocks (sections, context), in order. */
  text: string[];
  inputs: ModalInput[];
  /** False for a modal without a submit button (a notice). */
  submittable: boolean;
}

/** A request the person cannot make as given: the message says what to fix (HTTP 400). */
export class ActionError extends Error {}

type Json = Record<string, any>;

function plainText(t: unknown): string {
  return typeof (t as Json | undefined)?.text === 'string' ? ((t as Json).text as string) : '';
}

function optionsOf(el: Json): { label: string; value: string }[] {
  return (Array.isArray(el.options) ? (el.options as Json[]) : [])
    .filter((o) => typeof o.value === 'string')
    .map((o) => ({ label: plainText(o.text) || String(o.value), value: String(o.value) }));
}

/** The buttons and static selects of a message's blocks (an `actions` block's elements or a section's accessory). */
export function messageElements(blocks: unknown[] | undefined): ViewElement[] {
  const out: ViewElement[] = [];
  for (const raw of blocks ?? []) {
    const block = raw as Json;
    const candidates: Json[] =
      block.type === 'actions' && Array.isArray(block.elements) ? block.elements : block.accessory ? [block.accessory] : [];
    for (const el of candidates) {
      if (typeof el.action_id !== 'string') continue;
      if (el.type === 'button') out.push({ type: 'button', action_id: el.action_id, label: plainText(el.text) });
      else if (el.type === 'static_select') {
        const selected = typeof el.initial_option?.value === 'string' ? (el.initial_option.value as string) : undefined;
        const label = plainText(el.placeholder) || 'Choose';
        const element: ViewElement = { type: 'static_select', action_id: el.action_id, label, options: optionsOf(el) };
        out.push(selected !== undefined ? { ...element, selected } : element);
      }
    }
  }
  return out;
}

/** The person `as` names (a name, id or email), among the people who may act here. */
export function personOf(emu: SlackEmulator, people: readonly string[], as: string | undefined): EmulatedUser {
  const wanted = (as ?? '').trim().toLowerCase();
  const user = people
    .map((id) => emu.user(id))
    .find((u) => u && (u.name.toLowerCase() === wanted || u.id.toLowerCase() === wanted || u.profile.email?.toLowerCase() === wanted));
  if (!user) {
    const names = people.map((id) => emu.user(id)?.name ?? id).join(', ');
    throw new ActionError(`as=${as ?? ''}: give who acts, one of ${names}`);
  }
  return user;
}

export interface ClickRequest {
  as?: string;
  channel?: string;
  ts?: string;
  action_id?: string;
  button?: string;
  option?: string;
}

/** What a click became: delivered to the worker as a `block_actions` payload. */
export interface ClickDone {
  user: string;
  channel: string;
  ts: string;
  action_id: string;
  option?: string;
}

/**
 * Performs the click `req` describes through the emulator's interactive delivery; throws
 * ActionError when the request names nothing the person could click.
 */
export function click(emu: SlackEmulator, people: readonly string[], req: ClickRequest): ClickDone {
  const user = personOf(emu, people, req.as);
  const channel = emu.channel(req.channel ?? '') ?? emu.channelByName(req.channel ?? '');
  if (!channel) throw new ActionError(`channel=${req.channel ?? ''}: no such channel (give its id or name)`);
  if (!req.action_id && !req.button) throw new ActionError('give the element to click: button=<its label> or action_id=<its action_id>');
  const matches = (el: ViewElement) =>
    req.action_id ? el.action_id === req.action_id : el.type === 'button' && el.label.trim() === (req.button ?? '').trim();
  let message: EmulatedMessage | undefined;
  if (req.ts) {
    message = emu.message(channel.id, req.ts);
    if (!message) throw new ActionError(`ts=${req.ts}: no such message in #${channel.name}`);
  } else {
    const all = emu.messages(channel.id).flatMap((m) => [m, ...(m.reply_count ? emu.replies(channel.id, m.ts) : [])]);
    message = all
      .filter((m) => messageElements(m.blocks).some(matches))
      .sort((a, b) => Number(b.ts) - Number(a.ts))[0];
  }
  const element = message ? messageElements(message.blocks).find(matches) : undefined;
  const what = req.action_id ? `an element with action_id ${req.action_id}` : `a button "${req.button ?? ''}"`;
  if (!message || !element) throw new ActionError(`no message ${req.ts ? req.ts : 'of #' + channel.name} has ${what}`);
  if (element.type === 'static_select' && !element.options?.some((o) => o.value === req.option)) {
    const values = (element.options ?? []).map((o) => o.value).join(', ');
    throw new ActionError(`option=${req.option ?? ''}: the menu ${element.action_id} offers ${values}`);
  }
  if (channel.isPrivate && !channel.members.has(user.id)) throw new ActionError(`${user.name} is not in #${channel.name} and cannot see it`);
  const option = element.type === 'static_select' ? req.option : undefined;
  emu.click(user.id, channel.id, message.ts, element.action_id, option !== undefined ? { selectedOption: option } : {});
  return { user: user.name, channel: channel.id, ts: message.ts, action_id: element.action_id, ...(option !== undefined ? { option } : {}) };
}

function blockText(block: Json): string | undefined {
  if (block.type === 'section' || block.type === 'header') {
    const fields = Array.isArray(block.fields) ? (block.fields as Json[]).map((f) => String(f.text ?? '')) : [];
    return [plainText(block.text), ...fields].filter(Boolean).join('\n') || undefined;
  }
  if (block.type === 'context' && Array.isArray(block.elements)) return (block.elements as Json[]).map((e) => String(e.text ?? '')).join(' ');
  return undefined;
}

/** The modals the worker opened, newest first, leaving out those in `done` (submitted or closed here). */
export function openModals(emu: SlackEmulator, done: ReadonlySet<string>): OpenModal[] {
  return [...emu.views.views.values()]
    .filter((v) => !done.has(v.id))
    .reverse()
    .map((v) => {
      const blocks = (Array.isArray(v.view.blocks) ? v.view.blocks : []) as Json[];
      const inputs: ModalInput[] = blocks
        .filter((b) => b.type === 'input' && (b.element?.type === 'static_select' || b.element?.type === 'plain_text_input'))
        .map((b) => ({
          block_id: String(b.block_id),
          label: plainText(b.label),
          type: b.element.type as ModalInput['type'],
          optional: b.optional === true,
          multiline: b.element.multiline === true,
          ...(b.element.type === 'static_select' ? { options: optionsOf(b.element as Json) } : {}),
        }));
      return {
        id: v.id,
        title: plainText(v.view.title),
        text: blocks.map(blockText).filter((t): t is string => t !== undefined),
        inputs,
        submittable: Boolean(v.view.submit),
      };
    });
}

/**
 * Submits the open modal `viewId` as `as` with `values` by input block id, through the
 * emulator's `view_submission` delivery; the emulator refuses what Slack's client would
 * not send (a required input left empty, a text over its length).
 */
export function submitModal(
  emu: SlackEmulator,
  people: readonly string[],
  as: string | undefined,
  viewId: string,
  values: Record<string, string>,
): string {
  const user = personOf(emu, people, as);
  if (!emu.views.views.has(viewId)) throw new ActionError(`view=${viewId}: no such modal`);
  try {
    emu.submitView(user.id, viewId, values);
  } catch (err) {
    throw new ActionError(`the modal cannot be submitted: ${(err as Error).message}`);
  }
  return user.name;
}
