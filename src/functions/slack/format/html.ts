/** SOAR richtext (HTML) → Slack mrkdwn or plain text. */
import { decodeEntities } from './entities.js';
import { escapeSlackText, normalizeNewlines } from './escape.js';

/** Maximum nesting of inline formatting tags honoured by the HTML converter. */
const MAX_FORMAT_DEPTH = 32;

const BLOCK_TAGS: ReadonlySet<string> = new Set([
  'address', 'article', 'aside', 'blockquote', 'body', 'caption', 'center', 'dd', 'details', 'dialog',
  'dir', 'div', 'dl', 'dt', 'fieldset', 'figcaption', 'figure', 'footer', 'form', 'header', 'hgroup',
  'hr', 'html', 'main', 'menu', 'nav', 'ol', 'p', 'section', 'summary', 'table', 'tbody', 'tfoot',
  'thead', 'tr', 'ul',
]);
const HEADING_TAGS: ReadonlySet<string> = new Set(['h1', 'h2', 'h3', 'h4', 'h5', 'h6']);
const INLINE_MARKS: ReadonlyMap<string, string> = new Map([
  ['b', '*'], ['strong', '*'], ['i', '_'], ['em', '_'], ['cite', '_'], ['s', '~'], ['strike', '~'],
  ['del', '~'], ['code', '`'], ['tt', '`'], ['kbd', '`'], ['samp', '`'],
]);
/** Elements whose content is not displayable text. */
const SKIPPED_CONTENT_TAGS: ReadonlySet<string> = new Set(['script', 'style', 'template']);

interface Frame {
  tag: string;
  kind: 'root' | 'mark' | 'anchor';
  mark?: string;
  href?: string;
  parts: string[];
}

interface ParsedTag {
  name: string;
  closing: boolean;
  attrs: string;
  end: number; // index of the closing '>'
}

/** Wraps every non-blank line of `inner` in `mark` (mrkdwn formatting cannot span lines or
 *  start/end with whitespace), keeping surrounding whitespace outside the markers. */
function wrapLines(inner: string, mark: string): string {
  return inner
    .split('\n')
    .map((line) => {
      const m = /^(\s*)([\s\S]*?)(\s*)$/.exec(line);
      if (!m || m[2] === '') return line;
      return `${m[1]}${mark}${m[2]}${mark}${m[3]}`;
    })
    .join('\n');
}

function getAttribute(attrs: string, name: string): string | undefined {
  const re = new RegExp(`(?:^|[\\s/])${name}\\s*=\\s*(?:"([^"]*)"|'([^']*)'|([^\\s"'=<>\`]+))`, 'i');
  const m = re.exec(attrs);
  if (!m) return undefined;
  return m[1] ?? m[2] ?? m[3];
}

/**
 * Streaming HTML → mrkdwn (or plain text) converter. A small tolerant tokenizer, linear in the
 * input size; all text it emits is entity-decoded and then Slack-escaped.
 */
class HtmlConverter {
  private readonly stack: Frame[] = [{ tag: '', kind: 'root', parts: [] }];
  private pendingNl = 0;
  private pendingSp = false;
  private started = false;
  private afterBullet = false;
  private preDepth = 0;
  private preFresh = false;
  private preFenceOpen = false;
  private quoteAware = true;
  private noGtFrom = Infinity;
  private noCommentEndFrom = Infinity;
  private readonly noCloseFrom = new Map<string, number>();
  /** Open tags that got no frame, by name, so their end tags are ignored too. */
  private readonly suppressed = new Map<string, number>();

  constructor(private readonly plain: boolean) {}

  convert(html: string): string {
    const src = normalizeNewlines(html);
    const len = src.length;
    let i = 0;
    while (i < len) {
      const lt = src.indexOf('<', i);
      if (lt < 0) {
        this.text(src.slice(i));
        break;
      }
      if (lt > i) this.text(src.slice(i, lt));
      i = this.markup(src, lt);
    }
    while (this.stack.length > 1) this.closeTop();
    if (this.preFenceOpen) this.closePreFence();
    return this.stack[0]!.parts.join('');
  }

  /** Handles markup starting at `lt` (a '<'); returns the index to continue from. */
  private markup(src: string, lt: number): number {
    const next = src.charCodeAt(lt + 1);
    if (src.startsWith('<!--', lt)) {
      const close = lt >= this.noCommentEndFrom ? -1 : src.indexOf('-->', lt + 4);
      if (close < 0) {
        this.noCommentEndFrom = Math.min(this.noCommentEndFrom, lt);
        this.text('<');
        return lt + 1;
      }
      return close + 3;
    }
    if (next === 0x21 /* ! */ || next === 0x3f /* ? */) {
      const gt = this.findGt(src, lt);
      if (gt < 0) {
        this.text('<');
        return lt + 1;
      }
      return gt + 1;
    }
    const tag = this.parseTag(src, lt);
    if (!tag) {
      this.text('<');
      return lt + 1;
    }
    if (tag.closing) this.closeTag(tag.name);
    else {
      if (SKIPPED_CONTENT_TAGS.has(tag.name) && tag.end < (this.noCloseFrom.get(tag.name) ?? Infinity)) {
        const re = new RegExp(`</${tag.name}\\s*>`, 'gi');
        re.lastIndex = tag.end + 1;
        const m = re.exec(src);
        if (m) return m.index + m[0].length;
        // Unterminated: keep the content visible rather than dropping the rest of the text.
        this.noCloseFrom.set(tag.name, tag.end);
      }
      this.openTag(tag.name, tag.attrs, /\/\s*$/.test(tag.attrs));
    }
    return tag.end + 1;
  }

  private findGt(src: string, from: number): number {
    if (from >= this.noGtFrom) return -1;
    const gt = src.indexOf('>', from);
    if (gt < 0) this.noGtFrom = from;
    return gt;
  }

  private parseTag(src: string, lt: number): ParsedTag | null {
    let j = lt + 1;
    const closing = src.charCodeAt(j) === 0x2f; /* / */
    if (closing) j++;
    const nameMatch = /[a-zA-Z][a-zA-Z0-9:-]*/y;
    nameMatch.lastIndex = j;
    const m = nameMatch.exec(src);
    if (!m) return null;
    const name = m[0].toLowerCase();
    const attrStart = j + m[0].length;
    let end = -1;
    if (this.quoteAware) {
      let k = attrStart;
      const len = src.length;
      while (k < len) {
        const c = src.charCodeAt(k);
        if (c === 0x3e /* > */) {
          end = k;
          break;
        }
        if (c === 0x3d /* = */) {
          k++;
          while (k < len && /\s/.test(src[k]!)) k++;
          const q = src[k];
          if (q === '"' || q === "'") {
            const close = src.indexOf(q, k + 1);
            if (close < 0) break; // unbalanced quote: give up quote awareness below
            k = close + 1;
            continue;
          }
          continue;
        }
        k++;
      }
      if (end < 0) this.quoteAware = false; // malformed quoting: fall back to first '>' (linear)
    }
    if (end < 0) end = this.findGt(src, attrStart);
    if (end < 0) return null;
    return { name, closing, attrs: src.slice(attrStart, end), end };
  }

  private openTag(name: string, attrs: string, selfClosing: boolean): void {
    if (name === 'br') {
      this.lineBreak();
      return;
    }
    if (name === 'pre') {
      this.block();
      if (this.preDepth === 0) this.preFresh = true;
      this.preDepth++;
      return;
    }
    if (name === 'li') {
      this.block();
      this.write('•');
      this.pendingSp = true;
      this.afterBullet = true;
      return;
    }
    if (BLOCK_TAGS.has(name)) {
      this.block();
      return;
    }
    if (selfClosing) return;
    const depthOk = this.stack.length <= MAX_FORMAT_DEPTH;
    if (name === 'a') {
      if (depthOk) this.stack.push({ tag: 'a', kind: 'anchor', href: getAttribute(attrs, 'href') ?? '', parts: [] });
      else this.suppress(name);
      return;
    }
    const heading = HEADING_TAGS.has(name);
    if (heading) this.block();
    const mark = heading ? '*' : INLINE_MARKS.get(name);
    if (mark === undefined) return;
    // No frame in plain mode, inside pre, too deep, or for a marker already open (`**x**` would
    // not render as bold); its end tag must then not close an outer element of the same name.
    if (this.plain || this.preDepth > 0 || !depthOk || this.stack.some((f) => f.kind === 'mark' && f.mark === mark)) {
      this.suppress(name);
      return;
    }
    this.stack.push({ tag: name, kind: 'mark', mark, parts: [] });
  }

  private suppress(name: string): void {
    this.suppressed.set(name, (this.suppressed.get(name) ?? 0) + 1);
  }

  private closeTag(name: string): void {
    if (name === 'pre') {
      if (this.preDepth > 0) {
        this.preDepth--;
        if (this.preDepth === 0) {
          this.pendingNl = 0; // trailing newlines of preformatted text are not content
          if (this.preFenceOpen) this.closePreFence();
        }
      }
      this.block();
      return;
    }
    const suppressed = this.suppressed.get(name) ?? 0;
    if (suppressed > 0) this.suppressed.set(name, suppressed - 1);
    else for (let idx = this.stack.length - 1; idx >= 1; idx--) {
      if (this.stack[idx]!.tag === name) {
        while (this.stack.length > idx) this.closeTop();
        break;
      }
    }
    if (BLOCK_TAGS.has(name) || HEADING_TAGS.has(name) || name === 'li') this.block();
    else if (name === 'td' || name === 'th') this.space();
  }

  private closePreFence(): void {
    this.preFenceOpen = false;
    this.pendingNl = 0;
    this.pendingSp = false;
    this.top().parts.push('```');
  }

  private closeTop(): void {
    const f = this.stack.pop()!;
    const inner = f.parts.join('');
    if (inner === '') return;
    let out: string;
    if (f.kind === 'mark') out = wrapLines(inner, f.mark!);
    else {
      const m = /^(\s*)([\s\S]*?)(\s*)$/.exec(inner)!;
      const text = m[2]!;
      const href = escapeSlackText(decodeEntities(f.href ?? '').replace(/\s+/g, ' ').trim());
      let body: string;
      if (href === '' || text === href) body = text;
      else if (text === '') body = href;
      else body = `${text} (${href})`;
      out = `${m[1]}${body}${m[3]}`;
    }
    this.top().parts.push(out);
  }

  private top(): Frame {
    return this.stack[this.stack.length - 1]!;
  }

  private write(s: string): void {
    if (s === '') return;
    const f = this.top();
    if (this.started) {
      if (this.pendingNl > 0) f.parts.push('\n'.repeat(this.pendingNl));
      else if (this.pendingSp) f.parts.push(' ');
    }
    this.pendingNl = 0;
    this.pendingSp = false;
    this.afterBullet = false;
    this.started = true;
    f.parts.push(s);
  }

  private space(): void {
    if (this.started && this.pendingNl === 0) this.pendingSp = true;
  }

  private block(): void {
    if (this.afterBullet || !this.started) return;
    this.pendingNl = Math.max(this.pendingNl, 1);
    this.pendingSp = false;
  }

  private lineBreak(): void {
    if (!this.started) return;
    this.afterBullet = false;
    this.pendingNl = Math.min(this.preDepth > 0 ? Infinity : 2, this.pendingNl + 1);
    this.pendingSp = false;
  }

  private text(raw: string): void {
    if (raw === '') return;
    if (this.preDepth > 0) {
      this.preText(raw);
      return;
    }
    const collapsed = raw.replace(/[ \t\n\r\f]+/g, ' ');
    if (collapsed === ' ') {
      this.space();
      return;
    }
    const lead = collapsed.startsWith(' ');
    const trail = collapsed.endsWith(' ');
    const core = collapsed.slice(lead ? 1 : 0, trail ? collapsed.length - 1 : collapsed.length);
    if (lead) this.space();
    this.write(escapeSlackText(decodeEntities(core).replace(/\u00a0/g, ' ')));
    if (trail) this.space();
  }

  private preText(raw: string): void {
    let s = decodeEntities(raw).replace(/\u00a0/g, ' ');
    if (this.preFresh) {
      s = s.replace(/^\n/, '');
      if (s === '') return;
      this.preFresh = false;
    }
    const m = /\n*$/.exec(s)!;
    const body = s.slice(0, m.index);
    if (body !== '') {
      let out = escapeSlackText(body);
      if (!this.plain && !this.preFenceOpen) {
        this.preFenceOpen = true;
        out = '```' + out;
      }
      this.write(out);
    }
    this.pendingNl += s.length - m.index;
  }
}

/**
 * Converts SOAR richtext (HTML) into Slack mrkdwn that is safe to post: block elements
 * (p, div, br, headings, list items…) become newlines, b/strong → *bold*, i/em → _italic_,
 * s/del → ~strike~, li → "• ", code → `code`, pre → ``` block; HTML entities are decoded and the
 * result re-escaped, every other tag is stripped. Links are never reproduced as Slack links:
 * `<a href="x">y</a>` becomes `y (x)` so the real target is always visible.
 */
export function htmlToMrkdwn(html: string): string {
  return new HtmlConverter(false).convert(html);
}

/** Same conversion as {@link htmlToMrkdwn} but without mrkdwn formatting markers. */
export function htmlToPlain(html: string): string {
  return new HtmlConverter(true).convert(html);
}
