/** Assembly of rendered content into Slack messages, and the module's entry point. */
import { parseContainer } from './container.js';
import { escapeSlackText, normalizeNewlines } from './escape.js';
import { CONTENT_BLOCKS, SLACK_LIMITS, TEXT_BUDGET, type Block, type RenderedMessage, type RenderOptions } from './limits.js';
import { splitText, truncateHeader } from './split.js';
import { buildSoarLink, renderLabel, renderValue, toTyped, type RenderContext } from './values.js';

/** Keys with a special meaning in an fn_slack container. */
const TYPE_OF_DATA_KEY = 'Type of data';
const ADDITIONAL_TEXT_KEY = 'Additional Text';
/** "Resilient URL" is the fn_slack 2.x name of "SOAR URL". */
const SOAR_URL_KEYS: ReadonlySet<string> = new Set(['SOAR URL', 'Resilient URL']);

interface Draft {
  blocks: Block[];
  pieces: string[];
  textLength: number;
}

/** Packs blocks into messages within Slack's limits, keeping each message's fallback text in step. */
class MessageBuilder {
  private readonly drafts: Draft[] = [];
  private pendingFields: Array<{ text: string; fallback: string }> = [];

  constructor(private readonly mrkdwn: boolean) {}

  textObject(text: string): Record<string, unknown> {
    return this.mrkdwn ? { type: 'mrkdwn', text, verbatim: true } : { type: 'plain_text', text, emoji: true };
  }

  /** `text` is the escaped header; `fallback` the (possibly longer) text for the notification. */
  header(text: string, fallback: string): void {
    this.flushFields();
    this.push({ type: 'header', text: { type: 'plain_text', text, emoji: true } }, fallback);
  }

  /** One or more sections; text longer than a section allows is split. */
  section(text: string): void {
    this.flushFields();
    for (const chunk of splitText(text, SLACK_LIMITS.sectionText)) {
      if (chunk.trim() === '') continue; // Slack rejects blank text; whitespace carries no content
      this.push({ type: 'section', text: this.textObject(chunk) }, chunk);
    }
  }

  /**
   * A labelled field (`*Label*\nvalue`; `Label: value` in the fallback text); one too long for a
   * field becomes its own section(s).
   */
  field(label: string, value: string): void {
    const text = label === '' ? value : this.mrkdwn ? `*${label}*\n${value}` : `${label}:\n${value}`;
    if (text.length > SLACK_LIMITS.fieldText) {
      this.section(text);
      return;
    }
    const fallback = label === '' ? value : this.mrkdwn ? `*${label}*: ${value}` : `${label}: ${value}`;
    this.pendingFields.push({ text, fallback });
    if (this.pendingFields.length >= SLACK_LIMITS.fieldsPerSection) this.flushFields();
  }

  context(text: string): void {
    this.flushFields();
    this.push({ type: 'context', elements: [this.textObject(text)] }, text);
  }

  finish(): RenderedMessage[] {
    this.flushFields();
    const total = this.drafts.length;
    return this.drafts.map((d, idx) => {
      const blocks = [...d.blocks];
      const pieces = [...d.pieces];
      if (total > 1) {
        const marker = idx === 0 ? `(1/${total}, continued in thread)` : `(continued ${idx + 1}/${total})`;
        const markerBlock = { type: 'context', elements: [this.textObject(marker)] };
        if (idx === 0) {
          blocks.push(markerBlock);
          pieces.push(marker);
        } else {
          blocks.unshift(markerBlock);
          pieces.unshift(marker);
        }
      }
      return { text: pieces.join('\n'), blocks };
    });
  }

  private flushFields(): void {
    if (this.pendingFields.length === 0) return;
    const fields = this.pendingFields;
    this.pendingFields = [];
    this.push(
      { type: 'section', fields: fields.map((f) => this.textObject(f.text)) },
      fields.map((f) => f.fallback).join('\n'),
    );
  }

  private push(block: Block, piece: string): void {
    let d = this.drafts[this.drafts.length - 1];
    if (!d || d.blocks.length >= CONTENT_BLOCKS || d.textLength + 1 + piece.length > TEXT_BUDGET) {
      d = { blocks: [], pieces: [], textLength: 0 };
      this.drafts.push(d);
    }
    d.textLength += (d.pieces.length > 0 ? 1 : 0) + piece.length;
    d.blocks.push(block);
    d.pieces.push(piece);
  }
}

function renderContainer(entries: Array<[string, unknown]>, opts: RenderOptions, b: MessageBuilder): void {
  const ctx: RenderContext = { mrkdwn: opts.mrkdwn, timeZone: opts.timeZone?.trim() || 'UTC' };
  const plainCtx: RenderContext = { ...ctx, mrkdwn: false };
  let header: unknown;
  let intro: unknown;
  const fields: Array<[string, unknown]> = [];
  const links: Array<[string, unknown]> = [];
  for (const [key, value] of entries) {
    if (key === TYPE_OF_DATA_KEY) header = value;
    else if (key === ADDITIONAL_TEXT_KEY) intro = value;
    else if (SOAR_URL_KEYS.has(key)) links.push([key, value]);
    else fields.push([key, value]);
  }

  // Header (plain_text only): one line, truncated; the full value goes to the fallback text,
  // or — when too long even for that — into sections so it is never lost.
  const headerText = renderValue(header, plainCtx).replace(/\s+/g, ' ').trim();
  if (headerText !== '') {
    const short = truncateHeader(headerText);
    if (headerText.length <= SLACK_LIMITS.sectionText) b.header(short, headerText);
    else {
      b.header(short, short);
      b.section(headerText);
    }
  }

  const introText = renderValue(intro, ctx);
  if (introText.trim() !== '') b.section(introText);

  for (const [key, value] of fields) b.field(renderLabel(key), renderValue(value, ctx) || '-');

  for (const [key, value] of links) {
    const typed = toTyped(value, 'incident');
    const link = buildSoarLink(typed, opts);
    if (!link) {
      b.field(renderLabel(key), renderValue(typed.data, ctx) || '-');
      continue;
    }
    const url = escapeSlackText(link.url);
    b.context(opts.mrkdwn ? `<${url}|${link.label}>` : `${link.label}: ${url}`);
  }
}

/**
 * Renders `slack_text` (plain text or an fn_slack JSON container) into Slack messages.
 *
 * The first message is posted to the channel and the rest, if any, as replies in its thread, in
 * order; continuation messages are marked "(continued k/N)". Each message has Block Kit `blocks`
 * and a fallback `text` with the same content, both within Slack's limits (see
 * {@link SLACK_LIMITS}). All untrusted content is escaped so it cannot mention or link.
 *
 * @throws Error when `slackText` is empty or whitespace only, or is a container with nothing to show.
 */
export function renderSlackText(slackText: string, opts: RenderOptions): RenderedMessage[] {
  if (typeof slackText !== 'string' || slackText.trim() === '') {
    throw new Error('slack_text is empty: there is nothing to post to Slack');
  }
  const b = new MessageBuilder(opts.mrkdwn);
  const entries = parseContainer(slackText);
  if (entries) renderContainer(entries, opts, b);
  else b.section(escapeSlackText(normalizeNewlines(slackText)));
  const messages = b.finish();
  if (messages.length === 0) {
    // Only possible for a container whose header and introduction are blank and has nothing else.
    throw new Error('slack_text has nothing to display: its "Type of data" and "Additional Text" are empty');
  }
  return messages;
}
