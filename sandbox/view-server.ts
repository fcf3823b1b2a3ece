/**
 * A small read-only window on what landed in the sandbox: the emulated workspace's
 * channels, messages (with thread replies) and files, and the local platform's files
 * (where archive exports are saved). One HTML page for people, JSON for scripts:
 *
 *   GET /                          the page (reloads itself every 5 s)
 *   GET /channels.json             channels with topic, purpose, members, flags
 *   GET /channels/<id>/messages.json   top-level messages oldest first, each with its replies
 *   GET /files.json                files uploaded to Slack
 *   GET /files/<id>                a file's bytes
 *   GET /platform.json             the platform dir and the files in it
 *   GET /platform/<path>           a platform file's bytes
 *
 * It listens on 127.0.0.1 only and changes nothing: the way to act is the worker
 * (`worker invoke`) or Slack's Web API on the emulator, as in a real workspace. Bytes
 * are served as downloads (or plain text), never as HTML, so an uploaded file cannot
 * script the page.
 */
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { EmulatedMessage, SlackEmulator } from '../test/support/slack-emulator.js';

export interface ViewServerOptions {
  emulator: SlackEmulator;
  platformDir: string;
  /** 0 (default): any free port. */
  port?: number;
}

export interface ViewMessage {
  ts: string;
  user: string | null;
  author: string;
  text: string;
  files: { id: string; name: string }[];
  thread_ts?: string;
  replies?: ViewMessage[];
}

function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export class ViewServer {
  readonly url: string;

  private constructor(
    private readonly server: http.Server,
    private readonly opts: ViewServerOptions,
  ) {
    this.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
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
    return {
      ts: m.ts,
      user: m.user ?? null,
      author,
      text: m.text,
      files: (m.files ?? []).map((f) => ({ id: String(f.id), name: String(f.name ?? f.title ?? f.id) })),
      ...(m.thread_ts ? { thread_ts: m.thread_ts } : {}),
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
    try {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('read-only: GET only\n');
        return;
      }
      const url = new URL(req.url ?? '/', 'http://localhost');
      const p = decodeURIComponent(url.pathname);
      const json = (body: unknown) => {
        res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8' }).end(`${JSON.stringify(body, null, 2)}\n`);
      };
      if (p === '/') return this.sendPage(res);
      if (p === '/channels.json') return json(this.channels());
      if (p === '/files.json') return json(this.files());
      if (p === '/platform.json') return json({ dir: this.opts.platformDir, files: this.platformFiles() });
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

  private sendPage(res: http.ServerResponse): void {
    const e = htmlEscape;
    const parts: string[] = [];
    const messageHtml = (m: ViewMessage, cls = 'msg'): string =>
      `<div class="${cls}"><b>${e(m.author)}</b> <small>${e(m.ts)}</small><pre>${e(m.text)}</pre>` +
      m.files.map((f) => `<div>📎 <a href="/files/${e(f.id)}">${e(f.name)}</a></div>`).join('') +
      (m.replies ?? []).map((r) => messageHtml(r, 'reply')).join('') +
      '</div>';
    for (const c of this.channels()) {
      const flags = [c.is_private ? 'private' : 'public', c.is_archived ? 'archived' : ''].filter(Boolean).join(', ');
      parts.push(
        `<h3>#${e(String(c.name))} <small>${e(String(c.id))} · ${e(flags)} · <a href="${e(String(c.messages_url))}">json</a></small></h3>` +
          (c.topic ? `<div>Topic: ${e(String(c.topic))}</div>` : '') +
          `<div><small>Members: ${e((c.members as string[]).join(', '))}</small></div>` +
          (this.messages(String(c.id)) ?? []).map((m) => messageHtml(m)).join(''),
      );
    }
    const files = this.files()
      .map((f) => `<li><a href="${e(String(f.url))}">${e(String(f.name))}</a> (${e(String(f.size))} bytes, in ${e((f.channels as string[]).join(', '))})</li>`)
      .join('');
    const platform = this.platformFiles()
      .map((f) => `<li><a href="/platform/${f.path.split('/').map(encodeURIComponent).join('/')}">${e(f.path)}</a> (${f.size} bytes)</li>`)
      .join('');
    const page =
      '<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="refresh" content="5"><title>Worker sandbox</title>' +
      '<style>body{font-family:sans-serif;max-width:60em;margin:1em auto}pre{white-space:pre-wrap;margin:.2em 0}' +
      '.msg{border-left:3px solid #ccc;padding-left:.5em;margin:.5em 0}.reply{margin-left:2em;border-left:3px solid #eee;padding-left:.5em}</style></head><body>' +
      `<h1>Worker sandbox: what landed</h1><p>JSON: <a href="/channels.json">channels</a> · <a href="/files.json">files</a> · <a href="/platform.json">platform</a></p>` +
      `<h2>Channels</h2>${parts.join('')}<h2>Files in Slack</h2><ul>${files || '<li>none yet</li>'}</ul>` +
      `<h2>Platform files</h2><p><code>${e(this.opts.platformDir)}</code></p><ul>${platform}</ul></body></html>`;
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'X-Content-Type-Options': 'nosniff' }).end(page);
  }
}
