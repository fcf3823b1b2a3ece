/**
 * Notes on the `soar` platform: comments on the incident
 * (`POST /rest/orgs/{org}/incidents/{id}/comments`) or on a task (`/tasks/{task}/comments`),
 * with the body `{"text": {"format": "html", "content": …}}`.
 *
 * The comment is HTML built here: the author (name and email), the text with every
 * character that means something in HTML escaped and line breaks kept, the permalink as a
 * link, and a marker `[note <key>]`. SOAR creates a comment on every POST, so before
 * posting the comments are listed and one carrying the marker is the earlier note: a
 * redelivered event (or a POST whose answer was lost) adds nothing. The marker is plain
 * text, not an attribute, because SOAR's rich-text sanitiser keeps text and drops
 * attributes it does not know.
 */
import { checkNote, isWebUrl } from '../note-check.js';
import type { AddedNote, NewNote } from '../platform.js';
import type { SoarClient } from './soar-client.js';
import { SOAR_PERMISSIONS } from './soar-permissions.js';

/** CommentDTO fields the worker reads; `text` is a string, or `{format, content}` on some versions. */
interface CommentDto {
  id?: number | string;
  text?: unknown;
  children?: CommentDto[] | null;
}

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** The marker that identifies a note's comment; `key` as it appears in the HTML. */
export function noteMarker(key: string): string {
  return `[note ${escapeHtml(key)}]`;
}

/** The comment's HTML (see the module comment). */
export function commentHtml(note: NewNote): string {
  const author = note.author.email
    ? `<b>${escapeHtml(note.author.name)}</b> (${escapeHtml(note.author.email)})`
    : `<b>${escapeHtml(note.author.name)}</b>`;
  const body = escapeHtml(note.text).replace(/\r?\n/g, '<br>');
  const permalink = note.slack?.permalink;
  const link = isWebUrl(permalink) ? `<a href="${escapeHtml(permalink)}">View in Slack</a> · ` : '';
  const inThread = note.slack?.thread_ts !== undefined && note.slack.thread_ts !== note.slack.ts;
  return `<div><p>${author} ${inThread ? 'in a Slack thread' : 'in Slack'}:</p><p>${body}</p><p>${link}${noteMarker(note.key)}</p></div>`;
}

function textOf(comment: CommentDto): string {
  const t = comment.text;
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof (t as { content?: unknown }).content === 'string') return (t as { content: string }).content;
  return '';
}

/** The comment (or reply, at any depth) that carries `marker`. */
function findMarked(comments: CommentDto[], marker: string): CommentDto | undefined {
  for (const c of comments) {
    if (textOf(c).includes(marker)) return c;
    const child = Array.isArray(c.children) ? findMarked(c.children, marker) : undefined;
    if (child) return child;
  }
  return undefined;
}

/** Adds `note` as a comment unless one carrying its key is already there. */
export async function addSoarNote(client: SoarClient, note: NewNote): Promise<AddedNote> {
  const { incidentId, taskId } = checkNote(note);
  const owner = taskId === undefined ? `incident ${incidentId}` : `task ${taskId} of incident ${incidentId}`;
  const path = taskId === undefined ? `/incidents/${incidentId}/comments` : `/tasks/${taskId}/comments`;

  const listed = await client.getJson<CommentDto[] | { entities?: CommentDto[] }>(path, {
    what: `the notes of ${owner}`,
    permission: taskId === undefined ? SOAR_PERMISSIONS.readIncidents : SOAR_PERMISSIONS.readTasks,
  });
  const comments = Array.isArray(listed) ? listed : Array.isArray(listed?.entities) ? listed.entities : [];
  const earlier = findMarked(comments, noteMarker(note.key));
  if (earlier) return { id: String(earlier.id ?? ''), created: false };

  const created = await client.postJson<CommentDto>(
    path,
    { text: { format: 'html', content: commentHtml(note) } },
    { what: `a note on ${owner}`, permission: taskId === undefined ? SOAR_PERMISSIONS.editIncidents : SOAR_PERMISSIONS.editTasks },
  );
  return { id: String(created?.id ?? ''), created: true };
}
