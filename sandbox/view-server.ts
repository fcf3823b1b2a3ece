/**
 * A small window on what landed in the sandbox: the emulated workspace's channels,
 * messages (with thread replies, buttons and menus) and files, the modals the worker
 * opened, and the local platform's files (where archive exports are saved); and the
 * place where a person clicks. One HTML page for people, JSON for scripts:
 *
 *   GET /                          the page (reloads itself every 5 s)
 *   GET /channels.json             channels with topic, purpose, members, flags
 *   GET /channels/<id>/messages.json   top-level messages oldest first, each with its replies
 *   GET /files.json                files uploaded to Slack
 *   GET /files/<id>                a file's bytes
 *   GET /platform.json             the platform dir and the files in it
 *   GET /platform/<path>           a platform file's bytes
 *   POST /click                    a person clicks a button or picks a menu option (view-clicks.ts)
 *   POST /submit                   a person submits a modal the worker opened
 *   POST /dismiss                  a person closes a modal (Slack tells the app nothing)
 *
 * It listens on 127.0.0.1 only. It changes nothing itself: a click or a submission is
 * the emulator's own interactive delivery to the worker, as Slack sends it, and the way
 * to call functions is `worker invoke`. The POSTs take a form (or JSON); a form with
 * `back` set answers with the page again, anything else with JSON. A POST from another
 * origin (a web page the browser has open) is refused. Bytes are served as downloads
 * (or plain text), never as HTML, so an uploaded file cannot script the page.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { EmulatedMessage, SlackEmulator } from '../test/support/slack-emulator.js';
import { ActionError, click, messageElements, openModals, personOf, submitModal } from './view-clicks.js';
import { htmlEscape, pageHtml, type ViewMessage } from './view-page.js';

export type { ViewMessage };

export interface ViewServerOptions {
  emulator: SlackEmulator;
  platformDir: string;
  /** User ids of the people who may click on the page (the first acts by default); default: every person in the workspace. */
  people?: string[];
  /** 0 (default): any free port. */
  port?: number;
}

/** Largest POST body taken (a modal's text is at most a few thousand characters). */
const MAX_POST_BYTES = 64 * 1024;

export class ViewServer {
  readonly url: string;
  readonly people: string[];
  /** Modals submitted or closed through this view: no longer shown. */
  private readonly doneModals = new Set<string>();

  private constructor(
    private readonly server: http.Server,
    private readonly opts: ViewServerOptions,
  ) {
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
    const emu = opts.emulator;
    this.people = opts.people ?? emu.users().filter((u) => !u.is_bot && !u.deleted && u.id !== emu.adminUserId).map((u) => u.id);
  }

  static async start(opts: ViewServerOptions): Promise<ViewServer> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port ?? 0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const view = new ViewServer(server, opts);
    server.on('request', (req, res) => view.handle(req, res));
    return view;
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  // ---------------------------------------------------------------------------------
  // The data, shaped for reading (names next to ids)
  // ---------------------------------------------------------------------------------

  private userName(id: string | undefined): string {
    if (!id) return 'unknown';
    return this.opts.emulator.user(id)?.real_name ?? id;
  }

  channels(): Record<string, unknown>[] {
    const emu = this.opts.emulator;
    return emu.channels().map((c) => ({
      id: c.id,
      name: c.name,
      is_private: c.isPrivate,
      is_archived: c.isArchived,
      topic: c.topic.value,
      purpose: c.purpose.value,
      members: [...c.members].map((m) => this.userName(m)),
      message_count: emu.messages(c.id).length,
      messages_url: `/channels/${c.id}/messages.json`,
    }));
  }

  private viewMessage(m: EmulatedMessage): ViewMessage {
    // A post made under a custom name (chat:write.customize) shows that name, as Slack does.
    const author = m.username ?? this.userName(m.user);
    const actions = messageElements(m.blocks);
    return {
      ts: m.ts,
      user: m.user ?? null,
      author,
      text: m.text,
      files: (m.files ?? []).map((f) => ({ id: String(f.id), name: String(f.name ?? f.title ?? f.id) })),
      ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}),
      ...(actions.length ? { actions } : {}),
    };
  }

  messages(channelId: string): ViewMessage[] | undefined {
    const emu = this.opts.emulator;
    if (!emu.channel(channelId)) return undefined;
    return emu.messages(channelId).map((m) => {
      const view = this.viewMessage(m);
      if (m.reply_count) view.replies = emu.replies(channelId, m.ts).map((r) => this.viewMessage(r));
      return view;
    });
  }

  files(): Record<string, unknown>[] {
    const emu = this.opts.emulator;
    return emu
      .files()
      .filter((f) => f.completed)
      .map((f) => ({
        id: f.id,
        name: f.name,
        title: f.title,
        size: f.size,
        mimetype: f.mimetype,
        user: this.userName(f.user),
        channels: [...new Set(f.shares.map((s) => emu.channel(s.channelId)?.name ?? s.channelId))],
        url: `/files/${f.id}`,
      }));
  }

  /** Files under the platform dir, relative paths, sorted; hidden files (exports being written) left out. */
  platformFiles(): { path: string; size: number }[] {
    const root = this.opts.platformDir;
    const out: { path: string; size: number }[] = [];
    const walk = (dir: string): void => {
      for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
        if (entry.name.startsWith('.')) continue;
        const full = path.join(dir, entry.name);
        if (entry.isDirectory()) walk(full);
        else if (entry.isFile()) out.push({ path: path.relative(root, full).split(path.sep).join('/'), size: fs.statSync(full).size });
      }
    };
    if (fs.existsSync(root)) walk(root);
    return out.sort((a, b) => a.path.localeCompare(b.path, 'en', { numeric: true }));
  }

  // ---------------------------------------------------------------------------------
  // HTTP
  // ---------------------------------------------------------------------------------

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (req.method === 'POST') {
      this.handlePost(req, res).catch((err: Error) => {
        if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
        res.end(`${err.message}\n`);
      });
      return;
    }
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res
          .writeHead(405, { Allow: 'GET, HEAD, POST', 'Content-Type': 'text/plain; charset=utf-8' })
          .end('GET, or POST to /click, /submit, /dismiss\n');
        return;
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const p = decodeURIComponent(url.pathname);
      const json = (body: unknown) => {
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' }).end(`${JSON.stringify(body, null, 2)}\n`);
      };
      if (p === '/') return this.sendPage(res, url.searchParams.get('as') ?? undefined);
      if (p === '/channels.json') return json(this.channels());
      if (p === '/files.json') return json(this.files());
      if (p === '/platform.json') return json({ dir: this.opts.platformDir, files: this.platformFiles() });
      if (p === '/modals.json') return json(openModals(this.opts.emulator, this.doneModals));
      const messages = /^\/channels\/([A-Z0-9]+)\/messages\.json$/.exec(p);
      if (messages) {
        const list = this.messages(messages[1] as string);
        return list ? json(list) : this.notFound(res, `no channel ${messages[1]}`);
      }
      const file = /^\/files\/([A-Z0-9]+)$/.exec(p);
      if (file) {
        const f = this.opts.emulator.file(file[1] as string);
        const bytes = f?.completed ? this.opts.emulator.fileBytes(f.id) : undefined;
        return f && bytes ? this.sendBytes(res, f.name, bytes) : this.notFound(res, `no file ${file[1]}`);
      }
      if (p.startsWith('/platform/')) return this.sendPlatformFile(res, p.slice('/platform/'.length));
      this.notFound(res, `nothing at ${p}; see / for what there is`);
    } catch (err) {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`${(err as Error).message}\n`);
    }
  }

  /** True when a browser says the POST comes from a page of another origin (a site cannot click for the person). */
  private foreignOrigin(req: http.IncomingMessage): boolean {
    const origin = req.headers.origin;
    if (origin === undefined || origin === 'null') return origin === 'null';
    const port = new URL(this.url).port;
    return origin !== `http://127.0.0.1:${port}` && origin !== `http://localhost:${port}`;
  }

  private async handlePost(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const p = new URL(req.url ?? '/', 'http://localhost').pathname;
    const text = (status: number, body: string): void => {
      res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${body}\n`);
    };
    if (!['/click', '/submit', '/dismiss'].includes(p)) return text(404, `nothing to POST to at ${p}: /click, /submit or /dismiss`);
    if (this.foreignOrigin(req)) return text(403, `a page from ${String(req.headers.origin)} cannot act in the sandbox`);
    let fields: Record<string, string>;
    try {
      fields = await readFields(req);
    } catch (err) {
      return text(400, (err as Error).message);
    }
    const emu = this.opts.emulator;
    let done: Record<string, unknown>;
    try {
      if (p === '/click') {
        done = { ok: true, click: click(emu, this.people, fields) };
      } else {
        const viewId = fields.view ?? '';
        if (p === '/submit') {
          const values = Object.fromEntries(
            Object.entries(fields)
              .filter(([k]) => k.startsWith('value:'))
              .map(([k, v]) => [k.slice('value:'.length), v]),
          );
          done = { ok: true, submitted: viewId, as: submitModal(emu, this.people, fields.as, viewId, values) };
        } else {
          if (!emu.views.views.has(viewId)) throw new ActionError(`view=${viewId}: no such modal`);
          done = { ok: true, closed: viewId };
        }
        this.doneModals.add(viewId);
      }
    } catch (err) {
      if (!(err instanceof ActionError)) throw err;
      if (fields.back) {
        const back = `/?as=${encodeURIComponent(fields.as ?? '')}`;
        res
          .writeHead(400, { 'Content-Type': 'text/html; charset=utf-8' })
          .end(`<p>${htmlEscape(err.message)}</p><p><a href="${htmlEscape(back)}">Back</a></p>`);
        return;
      }
      res.writeHead(400, { 'Content-Type': 'application/json; charset=utf-8' }).end(`${JSON.stringify({ ok: false, error: err.message })}\n`);
      return;
    }
    if (fields.back) {
      res.writeHead(303, { Location: `/?as=${encodeURIComponent(fields.as ?? '')}` }).end();
      return;
    }
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' }).end(`${JSON.stringify(done)}\n`);
  }

  private notFound(res: http.ServerResponse, why: string): void {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`${why}\n`);
  }

  private sendBytes(res: http.ServerResponse, name: string, bytes: Buffer): void {
    const text = /\.(txt|log|csv|json|md|eml)$/i.test(name);
    res
      .writeHead(200, {
        'Content-Type': text ? 'text/plain; charset=utf-8' : 'application/octet-stream',
        'Content-Disposition': `${text ? 'inline' : 'attachment'}; filename="${name.replace(/["\\\r\n]/g, '_')}"`,
        'X-Content-Type-Options': 'nosniff',
      })
      .end(bytes);
  }

  /** Serves a file only when it really is under the platform dir (no `..`, no symlink out). */
  private sendPlatformFile(res: http.ServerResponse, rel: string): void {
    const root = fs.realpathSync(this.opts.platformDir);
    let full: string;
    try {
      full = fs.realpathSync(path.resolve(root, rel));
    } catch {
      return this.notFound(res, `no platform file ${rel}`);
    }
    if (!full.startsWith(root + path.sep) || !fs.statSync(full).isFile()) return this.notFound(res, `no platform file ${rel}`);
    this.sendBytes(res, path.basename(full), fs.readFileSync(full));
  }

  private sendPage(res: http.ServerResponse, as: string | undefined): void {
    const emu = this.opts.emulator;
    let actor;
    try {
      actor = personOf(emu, this.people, as ?? emu.user(this.people[0] ?? '')?.name);
    } catch {
      actor = undefined;
    }
    const page = pageHtml({
      actor: actor ? { id: actor.id, name: actor.name, realName: actor.real_name } : undefined,
      people: this.people.map((id) => ({ id, name: emu.user(id)?.name ?? id })),
      channels: this.channels().map((c) => ({ channel: c, messages: this.messages(String(c.id)) ?? [] })),
      modals: openModals(emu, this.doneModals),
      ephemerals: actor ? emu.ephemerals(actor.id).map((m) => ({ channel: emu.channel(m.channel)?.name ?? m.channel, text: m.text })) : [],
      files: this.files(),
      platformDir: this.opts.platformDir,
      platformFiles: this.platformFiles(),
    });
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).end(page);
  }
}

/** A POST body as fields: a form (application/x-www-form-urlencoded) or a JSON object of strings. */
async function readFields(req: http.IncomingMessage): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_POST_BYTES) throw new Error(`the request is over ${MAX_POST_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const body = Buffer.concat(chunks).toString('utf8');
  if ((req.headers['content-type'] ?? '').startsWith('application/json')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new Error('the body is not JSON');
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('give a JSON object of fields');
    return Object.fromEntries(Object.entries(parsed).map(([k, v]) => [k, typeof v === 'string' ? v : JSON.stringify(v)]));
  }
  return Object.fromEntries(new URLSearchParams(body));
}
