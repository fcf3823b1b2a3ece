import { expect } from 'chai';
import { envelopeKey, routeEnvelope, type InboundContext, type InboundHandlers } from '../../../../../src/functions/slack/inbound/router.js';

describe('inbound router', function () {
  // The handlers only record what reached them; the context is not read by the router.
  const ctx = {} as InboundContext;

  it('keys an event by event_id, a click by action_ts and user, a submission by view id and hash, a command by trigger_id', function () {
    expect(envelopeKey({ kind: 'events_api', payload: { event_id: 'Ev1', event: { type: 'message' } } })).to.equal('event:Ev1');
    expect(
      envelopeKey({
        kind: 'interactive',
        payload: { type: 'block_actions', user: { id: 'U1' }, actions: [{ action_id: 'ask:x', action_ts: '1.2' }] },
      }),
    ).to.equal('action:1.2:U1');
    expect(envelopeKey({ kind: 'interactive', payload: { type: 'view_submission', view: { id: 'V1', hash: 'h1' } } })).to.equal('view:V1:h1');
    expect(envelopeKey({ kind: 'slash_commands', payload: { command: '/soar', trigger_id: 't.1' } })).to.equal('command:t.1');
  });

  it('gives no key to a payload that carries nothing identifying it', function () {
    expect(envelopeKey({ kind: 'events_api', payload: { event: { type: 'message' } } })).to.equal(undefined);
    expect(envelopeKey({ kind: 'interactive', payload: { type: 'block_actions', actions: [{ action_ts: '1.2' }] } })).to.equal(undefined);
    expect(envelopeKey({ kind: 'interactive', payload: { type: 'view_submission', view: { id: 'V1' } } })).to.equal(undefined);
    expect(envelopeKey({ kind: 'interactive', payload: { type: 'shortcut' } })).to.equal(undefined);
  });

  it('runs every handler for an event type, the matching action and view prefixes, and the command', async function () {
    const seen: string[] = [];
    const sets: InboundHandlers[] = [
      { events: { message: async (e) => void seen.push(`mirror:${String(e.text)}`) } },
      {
        events: { message: async () => void seen.push('second'), app_mention: async () => void seen.push('mention') },
        actions: { ask: async (a) => void seen.push(`ask:${a.value}`) },
        views: { triage: async (p) => void seen.push(`view:${String((p.view as { callback_id: string }).callback_id)}`) },
        command: async (p) => void seen.push(`command:${String(p.text)}`),
      },
    ];
    expect(await routeEnvelope({ kind: 'events_api', payload: { event: { type: 'message', text: 'hi' } }, retryAttempt: 0 }, sets, ctx)).to.equal(2);
    expect(
      await routeEnvelope(
        {
          kind: 'interactive',
          payload: { type: 'block_actions', actions: [{ action_id: 'ask:1', value: 'Approve', action_ts: '1' }] },
          retryAttempt: 0,
        },
        sets,
        ctx,
      ),
    ).to.equal(1);
    expect(
      await routeEnvelope(
        { kind: 'interactive', payload: { type: 'view_submission', view: { callback_id: 'triage:close' } }, retryAttempt: 0 },
        sets,
        ctx,
      ),
    ).to.equal(1);
    expect(await routeEnvelope({ kind: 'slash_commands', payload: { text: 'help' }, retryAttempt: 0 }, sets, ctx)).to.equal(1);
    expect(seen).to.deep.equal(['mirror:hi', 'second', 'ask:Approve', 'view:triage:close', 'command:help']);
  });

  it('reports 0 for what nothing handles', async function () {
    const sets: InboundHandlers[] = [{ actions: { ask: async () => undefined } }];
    expect(await routeEnvelope({ kind: 'events_api', payload: { event: { type: 'reaction_added' } }, retryAttempt: 0 }, sets, ctx)).to.equal(0);
    expect(
      await routeEnvelope(
        { kind: 'interactive', payload: { type: 'block_actions', actions: [{ action_id: 'other:1', action_ts: '1' }] }, retryAttempt: 0 },
        sets,
        ctx,
      ),
    ).to.equal(0);
    expect(await routeEnvelope({ kind: 'slash_commands', payload: {}, retryAttempt: 0 }, sets, ctx)).to.equal(0);
  });
});
