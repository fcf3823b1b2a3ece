/**
 * The sandbox view's HTML page: channels and messages with their buttons and menus as
 * forms (POST /click as the person chosen at the top), the modals the worker opened
 * (POST /submit, /dismiss), what only that person was shown (ephemeral messages), files
 * in Slack and on the platform. Everything from Slack or the platform is escaped: the
 * page shows text, never markup someone typed.
 */
import type { ModalInput, OpenModal, ViewElement } from './view-clicks.js';

export function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const e = htmlEscape;

/** A message as the view shows it (JSON at /channels/<id>/messages.json). */
export interface ViewMessage {
  ts: string;
  user: string | null;
  author: string;
  text: string;
  files: { id: string; name: string }[];
  thread_ts?: string;
  replies?: ViewMessage[];
  /** Its buttons and menus, when it has any (POST /click acts on them). */
  actions?: ViewElement[];
}

export interface PageData {
  /** Who clicks; undefined when the workspace has nobody to act as. */
  actor: { id: string; name: string; realName: string } | undefined;
  people: { id: string; name: string }[];
  channels: { channel: Record<string, unknown>; messages: ViewMessage[] }[];
  modals: OpenModal[];
  ephemerals: { channel: string; text: string }[];
  files: Record<string, unknown>[];
  platformDir: string;
  platformFiles: { path: string; size: number }[];
}

function hidden(fields: Record<string, string>): string {
  return Object.entries(fields)
    .map(([k, v]) => `<input type="hidden" name="${e(k)}" value="${e(v)}">`)
    .join('');
}

function actionForms(m: ViewMessage, channelId: string, actor: string): string {
  if (!m.actions?.length) return '';
  const forms = m.actions.map((el) => {
    const base = hidden({ as: actor, channel: channelId, ts: m.ts, action_id: el.action_id, back: '1' });
    if (el.type === 'button') return `<form method="post" action="/click">${base}<button>${e(el.label)}</button></form>`;
    const options = (el.options ?? [])
      .map((o) => `<option value="${e(o.value)}"${o.value === el.selected ? ' selected' : ''}>${e(o.label)}</option>`)
      .join('');
    return `<form method="post" action="/click">${base}<select name="option">${options}</select><button>Set ${e(el.label)}</button></form>`;
  });
  return `<div class="actions">${forms.join(' ')}</div>`;
}

function messageHtml(m: ViewMessage, channelId: string, actor: string | undefined, cls = 'msg'): string {
  return (
    `<div class="${cls}"><b>${e(m.author)}</b> <small>${e(m.ts)}</small><pre>${e(m.text)}</pre>` +
    m.files.map((f) => `<div>📎 <a href="/files/${e(f.id)}">${e(f.name)}</a></div>`).join('') +
    (actor ? actionForms(m, channelId, actor) : '') +
    (m.replies ?? []).map((r) => messageHtml(r, channelId, actor, 'reply')).join('') +
    '</div>'
  );
}

function inputHtml(input: ModalInput): string {
  const name = `value:${input.block_id}`;
  const label = `<label>${e(input.label)}${input.optional ? ' (optional)' : ''}<br>`;
  if (input.type === 'static_select') {
    const options = (input.options ?? []).map((o) => `<option value="${e(o.value)}">${e(o.label)}</option>`).join('');
    return `<div>${label}<select name="${e(name)}">${input.optional ? '<option value=""></option>' : ''}${options}</select></label></div>`;
  }
  return input.multiline
    ? `<div>${label}<textarea name="${e(name)}" rows="3" cols="60"></textarea></label></div>`
    : `<div>${label}<input name="${e(name)}" size="60"></label></div>`;
}

function modalHtml(m: OpenModal, actor: string): string {
  const text = m.text.map((t) => `<pre>${e(t)}</pre>`).join('');
  const close = `<form method="post" action="/dismiss">${hidden({ as: actor, view: m.id, back: '1' })}<button>Close</button></form>`;
  const submit = m.submittable
    ? `<form method="post" action="/submit">${hidden({ as: actor, view: m.id, back: '1' })}` +
      `${m.inputs.map(inputHtml).join('')}<button>Submit</button></form>`
    : '';
  return `<div class="modal"><h3>${e(m.title)} <small>${e(m.id)}</small></h3>${text}${submit}${close}</div>`;
}

export function pageHtml(d: PageData): string {
  const actor = d.actor?.name;
  const who = d.people
    .map((p) => (p.name === actor ? `<b>${e(p.name)}</b>` : `<a href="/?as=${encodeURIComponent(p.name)}">${e(p.name)}</a>`))
    .join(' · ');
  const modals = actor && d.modals.length ? `<h2>Open modals</h2>${d.modals.map((m) => modalHtml(m, actor)).join('')}` : '';
  const ephemerals = d.ephemerals.length
    ? `<h2>Only ${e(actor ?? '')} can see</h2><ul>${d.ephemerals.map((m) => `<li>#${e(m.channel)}: ${e(m.text)}</li>`).join('')}</ul>`
    : '';
  const channels = d.channels.map(({ channel: c, messages }) => {
    const flags = [c.is_private ? 'private' : 'public', c.is_archived ? 'archived' : ''].filter(Boolean).join(', ');
    return (
      `<h3>#${e(String(c.name))} <small>${e(String(c.id))} · ${e(flags)} · <a href="${e(String(c.messages_url))}">json</a></small></h3>` +
      (c.topic ? `<div>Topic: ${e(String(c.topic))}</div>` : '') +
      `<div><small>Members: ${e((c.members as string[]).join(', '))}</small></div>` +
      messages.map((m) => messageHtml(m, String(c.id), actor)).join('')
    );
  });
  const files = d.files
    .map(
      (f) =>
        `<li><a href="${e(String(f.url))}">${e(String(f.name))}</a> ` +
        `(${e(String(f.size))} bytes, in ${e((f.channels as string[]).join(', '))})</li>`,
    )
    .join('');
  const platform = d.platformFiles
    .map((f) => `<li><a href="/platform/${f.path.split('/').map(encodeURIComponent).join('/')}">${e(f.path)}</a> (${f.size} bytes)</li>`)
    .join('');
  // Reloading would wipe what a person is typing into a modal: it pauses while one is open.
  const refresh = modals ? '' : '<meta http-equiv="refresh" content="5">';
  return (
    `<!doctype html><html><head><meta charset="utf-8">${refresh}<title>Worker sandbox</title>` +
    '<style>body{font-family:sans-serif;max-width:60em;margin:1em auto}pre{white-space:pre-wrap;margin:.2em 0}' +
    '.msg{border-left:3px solid #ccc;padding-left:.5em;margin:.5em 0}.reply{margin-left:2em;border-left:3px solid #eee;padding-left:.5em}' +
    'form{display:inline-block;margin:.2em .3em .2em 0}.modal{border:2px solid #888;padding:.5em;margin:.5em 0}.modal form{display:block}' +
    '</style></head><body>' +
    '<h1>Worker sandbox: what landed</h1>' +
    `<p>Acting as ${who || 'nobody (no people in the workspace)'}: buttons and menus below click as this person; the worker gets the ` +
    'click over Socket Mode as from Slack. ' +
    (modals ? 'The page stops reloading itself while a modal is open.' : 'The page reloads itself every 5 s.') +
    '</p>' +
    '<p>JSON: <a href="/channels.json">channels</a> · <a href="/files.json">files</a> · <a href="/platform.json">platform</a> · ' +
    '<a href="/modals.json">modals</a></p>' +
    `${modals}${ephemerals}<h2>Channels</h2>${channels.join('')}<h2>Files in Slack</h2><ul>${files || '<li>none yet</li>'}</ul>` +
    `<h2>Platform files</h2><p><code>${e(d.platformDir)}</code></p><ul>${platform}</ul></body></html>`
  );
}
