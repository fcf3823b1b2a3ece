/**
 * What the triage card's buttons do (the inbound path hands each recorded click or
 * modal submission here once; see inbound/router.ts):
 *
 * - "Assign to me" and the severity select change the incident at once;
 * - "Close…" opens the close modal at once (its trigger lives 3 s), then checks the
 *   person and the incident and turns the modal into a notice if closing cannot go on;
 *   the modal's submission closes the incident.
 *
 * Each change is made as the clicking person, matched to a platform user by email (no
 * match: they are told why, nothing changes), adds a note saying who did what, and
 * redraws the card in place. A click on a closed incident's card says so and redraws
 * the card without its buttons. Changes to one incident are serialised in the worker so
 * that the card always ends up showing the last change; across workers the platform's
 * own versioning (SOAR's 409) keeps every change.
 *
 * Everything here is safe to run again for the same envelope (after a crash): a change
 * already made sends nothing (the platform compares), the note is keyed on the
 * envelope's key, and a redraw draws the same card. A delivery that made its change
 * records it (the envelope's steps), so the next one finishes the note and the redraw
 * even when the change itself now makes the incident look untouchable (a close made by
 * this very envelope is not "already closed; nothing changed"), and never makes the
 * change again over a later one.
 */
import { WorkerError } from '../../../core/runtime/errors.js';
import { KeyedMutex } from '../../../core/store/keyed-mutex.js';
import { INCIDENT_SEVERITIES } from '../../../platforms/incident-change.js';
import type { IncidentChange, IncidentSeverity, IncidentSummary, PlatformUser } from '../../../platforms/platform.js';
import type { BlockAction, InboundContext, InboundHandlers } from '../inbound/router.js';
import type { CallOptions } from '../slack-client.js';
import type { SlackState } from '../state.js';
import { ACTION_ASSIGN, ACTION_CLOSE, ACTION_SEVERITY, incidentIdOf, redrawCard, TRIAGE_PREFIX } from './card.js';
import { closeModal, noticeModal, readCloseSubmission, type CloseTarget } from './modal.js';
import type { SlackPerson } from '../people.js';
import { matchActor } from './people.js';
import { tellUser } from './tell.js';

type Json = Record<string, unknown>;
/** The step an envelope records once its change is on the platform (see the file comment). */
const CHANGED_STEP = 'triage-changed';
/** The change a person's action makes, and the note that says so. */
type Decide = (person: SlackPerson, actor: PlatformUser) => { change: IncidentChange; said: string };

const mutexes = new WeakMap<SlackState, KeyedMutex>();
function mutexOf(state: SlackState): KeyedMutex {
  let m = mutexes.get(state);
  if (!m) mutexes.set(state, (m = new KeyedMutex()));
  return m;
}

/** Where the click happened: the card's channel and message, and who clicked. */
interface ClickSite {
  userId: string | undefined;
  channelId: string | undefined;
  ts: string | undefined;
  /** The card message's blocks as the payload carries them (absent for a modal). */
  blocks: Json[] | undefined;
  text: string | undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** `v` when it is a JSON object (a payload's nested part), else undefined. */
function part(v: unknown): Json | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined;
}

function siteOf(payload: Json): ClickSite {
  const message = part(payload.message);
  const container = part(payload.container);
  const blocks = message?.blocks;
  return {
    userId: str(part(payload.user)?.id),
    channelId: str(part(payload.channel)?.id) ?? str(container?.channel_id),
    ts: str(container?.message_ts) ?? str(message?.ts),
    blocks: Array.isArray(blocks) ? (blocks as Json[]) : undefined,
    text: str(message?.text),
  };
}

function callOpts(ctx: InboundContext): CallOptions {
  return { signal: ctx.signal };
}

function describeStatus(inc: IncidentSummary): string {
  return inc.resolution ? `closed (${inc.resolution})` : 'closed';
}

/** A change's outcome put to the person: a platform refusal is told, an outage is retried by the inbound path. */
function refusal(err: unknown): string | undefined {
  return err instanceof WorkerError && !err.retryable ? err.message : undefined;
}

async function onAction(action: BlockAction, payload: Json, ctx: InboundContext): Promise<void> {
  const site = siteOf(payload);
  const incidentId = incidentIdOf(action.value) ?? incidentIdOf(str(action.block_id)?.slice(TRIAGE_PREFIX.length + 1));
  if (incidentId === undefined || !site.userId) {
    ctx.log.warn(`Triage click ${action.action_id} without a valid incident id or user; ignored`);
    if (site.userId) await tellUser(ctx.state, ctx.log, site, 'This card names no valid incident; nothing changed.', callOpts(ctx));
    return;
  }
  if (action.action_id === ACTION_CLOSE) return openClose(payload, incidentId, site, ctx);
  let decide: Decide;
  if (action.action_id === ACTION_ASSIGN) {
    decide = (person, actor) => ({ change: { owner: actor }, said: `Assigned to ${person.name} by ${person.name}` });
  } else if (action.action_id === ACTION_SEVERITY) {
    const severity = action.selected_option?.value as IncidentSeverity | undefined;
    if (!severity || !INCIDENT_SEVERITIES.includes(severity)) {
      await tellUser(
        ctx.state,
        ctx.log,
        site,
        `Severity must be one of ${INCIDENT_SEVERITIES.join(', ')}; nothing changed.`,
        callOpts(ctx),
      );
      return;
    }
    decide = (person) => ({ change: { severity }, said: `Severity set to ${severity} by ${person.name}` });
  } else {
    ctx.log.warn(`Unknown triage action ${action.action_id}; ignored`);
    return;
  }
  await applyChange(ctx, incidentId, site, decide);
}

/**
 * Reads the incident, makes the change as the person, adds the note and redraws the card,
 * all under the incident's lock in this worker.
 */
async function applyChange(ctx: InboundContext, incidentId: number, site: ClickSite, decide: Decide): Promise<void> {
  const opts = callOpts(ctx);
  const tell = (text: string) => tellUser(ctx.state, ctx.log, site, text, opts);
  await mutexOf(ctx.state).run(String(incidentId), async () => {
    const match = await matchActor(ctx.state, ctx.platform, site.userId!, opts);
    if (!match.ok) {
      await tell(`You cannot triage incident ${incidentId}: ${match.reason}. Nothing changed.`);
      return;
    }
    let current: IncidentSummary;
    try {
      current = await ctx.platform.getIncident(incidentId);
    } catch (err) {
      const why = refusal(err);
      if (why === undefined) throw err;
      await tell(`Incident ${incidentId} could not be read: ${why}. Nothing changed.`);
      return;
    }
    const changedBefore = ctx.steps.get(CHANGED_STEP) !== undefined;
    if (current.status === 'Closed' && !changedBefore) {
      await tell(`Incident ${incidentId} is ${describeStatus(current)}; nothing changed.`);
      await redraw(ctx, site, current, undefined);
      return;
    }
    const { change, said } = decide(match.person, match.actor);
    let updated = current;
    if (!changedBefore) {
      try {
        updated = await ctx.platform.updateIncident(incidentId, change, match.actor);
      } catch (err) {
        const why = refusal(err);
        if (why === undefined) throw err;
        await tell(`Incident ${incidentId} could not be changed: ${why}`);
        return;
      }
      await ctx.steps.record(CHANGED_STEP, { incidentId });
    }
    await addNote(ctx, incidentId, match.person, said, site);
    await redraw(ctx, site, updated, said);
  });
}

async function addNote(ctx: InboundContext, incidentId: number, person: SlackPerson, text: string, site: ClickSite): Promise<void> {
  try {
    await ctx.platform.addNote({
      incidentId,
      text,
      author: { id: person.id, name: person.name, email: person.email },
      created: new Date(),
      source: 'slack',
      ...(site.channelId && site.ts ? { slack: { channel_id: site.channelId, ts: site.ts } } : {}),
      key: `triage:${ctx.key}`,
    });
  } catch (err) {
    // A platform that cannot take notes yet still gets the change; the card says who did it.
    if (err instanceof WorkerError && err.code === 'unsupported') {
      ctx.log.warn(`Incident ${incidentId}: no note added (${err.message}): ${text}`);
      return;
    }
    throw err;
  }
}

/** Redraws the card message in place; a card that is gone is left alone. */
async function redraw(ctx: InboundContext, site: ClickSite, inc: IncidentSummary, said: string | undefined): Promise<void> {
  if (!site.channelId || !site.ts) return;
  const opts = callOpts(ctx);
  let blocks = site.blocks;
  let text = site.text;
  if (!blocks) {
    const history = await ctx.state.client.call(
      'conversations.history',
      { channel: site.channelId, latest: site.ts, oldest: site.ts, inclusive: true, limit: 1 },
      opts,
    );
    const message = (history.messages ?? []).find((m) => m.ts === site.ts);
    if (!message) {
      ctx.log.info(`The triage card ${site.channelId}/${site.ts} is gone; not redrawn`);
      return;
    }
    blocks = Array.isArray(message.blocks) ? message.blocks : [];
    text = str(message.text);
  }
  await ctx.state.client.call(
    'chat.update',
    { channel: site.channelId, ts: site.ts, blocks: JSON.stringify(redrawCard(blocks!, inc, said)), text: text ?? `Incident ${inc.id}` },
    { ...opts, what: `the triage card of incident ${inc.id}` },
  );
}

async function openClose(payload: Json, incidentId: number, site: ClickSite, ctx: InboundContext): Promise<void> {
  const opts = callOpts(ctx);
  const trigger = str(payload.trigger_id);
  if (!trigger || !site.channelId || !site.ts) {
    await tellUser(ctx.state, ctx.log, site, 'This click cannot open the close form (Slack sent no trigger); click Close… again.', opts);
    return;
  }
  const target: CloseTarget = { incidentId, channelId: site.channelId, ts: site.ts };
  let viewId: string | undefined;
  try {
    // First, before anything else: Slack honours the trigger for 3 seconds only.
    const opened = await ctx.state.client.call('views.open', { trigger_id: trigger, view: JSON.stringify(closeModal(target)) }, opts);
    viewId = str(opened.view?.id);
  } catch (err) {
    if (err instanceof WorkerError && !err.retryable) {
      await tellUser(ctx.state, ctx.log, site, `The close form could not be opened (${err.message}); click Close… again.`, opts);
      return;
    }
    throw err;
  }
  const problem = await closeProblem(ctx, incidentId, site.userId!);
  if (problem && viewId) {
    await ctx.state.client.call('views.update', { view_id: viewId, view: JSON.stringify(noticeModal(problem)) }, opts);
  }
}

/** Why the person cannot close the incident now, or undefined when they can. */
async function closeProblem(ctx: InboundContext, incidentId: number, userId: string): Promise<string | undefined> {
  const match = await matchActor(ctx.state, ctx.platform, userId, callOpts(ctx));
  if (!match.ok) return `You cannot close incident ${incidentId}: ${match.reason}.`;
  try {
    const inc = await ctx.platform.getIncident(incidentId);
    return inc.status === 'Closed' ? `Incident ${incidentId} is already ${describeStatus(inc)}.` : undefined;
  } catch (err) {
    const why = refusal(err);
    if (why === undefined) throw err;
    return `Incident ${incidentId} could not be read: ${why}`;
  }
}

async function onCloseSubmission(payload: Json, ctx: InboundContext): Promise<void> {
  const read = readCloseSubmission(payload.view as Json | undefined);
  const userId = str(part(payload.user)?.id);
  if (typeof read === 'string') {
    ctx.log.warn(`Close form from ${userId ?? 'unknown user'} refused: ${read}`);
    return;
  }
  const site: ClickSite = { userId, channelId: read.target.channelId, ts: read.target.ts, blocks: undefined, text: undefined };
  if (!userId) return;
  await applyChange(ctx, read.target.incidentId, site, (person) => ({
    change: { status: 'Closed', resolution: read.resolution, resolution_summary: read.summary },
    said: `Closed by ${person.name}: ${read.summary} (resolution: ${read.resolution})`,
  }));
}

/** The triage set of inbound handlers: card clicks (`triage:…`) and the close modal. */
export const TRIAGE_HANDLERS: InboundHandlers = {
  actions: { [TRIAGE_PREFIX]: onAction },
  views: { [TRIAGE_PREFIX]: onCloseSubmission },
};
