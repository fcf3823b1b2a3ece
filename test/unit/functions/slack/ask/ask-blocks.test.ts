/**
 * slack_ask's pure parts: the answers input, action ids, and what the question says before
 * and after it ends.
 */
import { expect } from 'chai';
import { answerActionId, endedBlocks, endedText, parseAnswerActionId, questionBlocks } from '../../../../../src/functions/slack/ask/ask-blocks.js';
import { askIdOf, parseAnswers } from '../../../../../src/functions/slack/ask/ask-function.js';
import type { AskRow } from '../../../../../src/functions/slack/ask/ask-table.js';

const q = { text: 'Isolate FS01?', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'Isolate FS01?' } }] };

describe('slack_ask blocks and inputs', () => {
  it('parses slack_answers into labels and refuses what Slack cannot show, saying what to fix', () => {
    expect(parseAnswers(' Approve , Reject,, ')).to.deep.equal(['Approve', 'Reject']);
    expect(() => parseAnswers(' , ')).to.throw(/slack_answers is empty/);
    expect(() => parseAnswers('A,A')).to.throw(/lists "A" twice/);
    expect(() => parseAnswers('x'.repeat(76))).to.throw(/longer than Slack's 75 characters/);
    expect(() => parseAnswers(Array.from({ length: 26 }, (_, i) => `a${i}`).join(','))).to.throw(/at most 25 buttons/);
  });

  it('action ids round-trip; anything else is not an answer', () => {
    const id = askIdOf('invocation-1');
    expect(id)
      .to.match(/^[0-9a-f]{24}$/)
      .and.equal(askIdOf('invocation-1'));
    expect(parseAnswerActionId(answerActionId(id, 3))).to.deep.equal({ askId: id, index: 3 });
    for (const bad of ['ask:', `ask:${id}`, `ask:${id}:x`, `triage:${id}:1`, `ask:${id}:1:2`])
      expect(parseAnswerActionId(bad), bad).to.equal(undefined);
  });

  it('the question carries one button per answer, the deadline, and who may answer', () => {
    const blocks = questionBlocks('abc', q, ['Approve', 'Reject'], Date.UTC(2026, 11, 7, 13, 0), ['U1', 'U2']);
    expect(blocks[0]).to.deep.equal(q.blocks[0]);
    expect(JSON.stringify(blocks[1])).to.contain('2026-12-07 13:00 UTC').and.contain('Only <@U1>, <@U2> may answer');
    const actions = blocks[2] as { elements: { action_id: string; value: string; text: { text: string } }[] };
    expect(actions.elements.map((e) => [e.action_id, e.value, e.text.text])).to.deep.equal([
      ['ask:abc:0', '0', 'Approve'],
      ['ask:abc:1', '1', 'Reject'],
    ]);
  });

  it('an ended question has no buttons and says how it ended', () => {
    const base = { question: q, deadline: Date.UTC(2026, 11, 7, 13, 0), endedAt: Date.UTC(2026, 11, 7, 12, 30) } as unknown as AskRow;
    const answered = { ...base, state: 'answered', answer: 'Approve', responder: { id: 'U1', name: 'Alice <Analyst>', email: 'a@x' } } as AskRow;
    expect(endedBlocks(answered).some((b) => b.type === 'actions')).to.equal(false);
    expect(endedText(answered)).to.equal('Isolate FS01?\nApprove, answered by <@U1> (Alice &lt;Analyst&gt;) at 2026-12-07 12:30 UTC');
    const expired = { ...base, state: 'expired', answer: null, responder: null } as AskRow;
    expect(endedText(expired)).to.equal('Isolate FS01?\nExpired at 2026-12-07 12:30 UTC without an answer: no answer was given');
  });
});
