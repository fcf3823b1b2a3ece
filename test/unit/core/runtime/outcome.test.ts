/**
 * decideOutcome: the one place that turns what happened to a delivery into ack, requeue
 * or dead-letter (issue #12 item 2). Every kind, with every reply fate that matters.
 */
import { expect } from 'chai';
import { FunctionError, InvalidMessageError, RetryableError, WorkerError } from '../../../../src/core/runtime/errors.js';
import { decideOutcome, type ReplyFate } from '../../../../src/core/runtime/outcome.js';

const FATES: ReplyFate[] = ['confirmed', 'failed', 'abandoned', 'connection-lost'];

describe('decideOutcome', function () {
  it('requeues when shutting down, when the ledger is unavailable, and for a pending retry', function () {
    expect(decideOutcome({ kind: 'shutting-down' })).to.equal('requeue');
    expect(decideOutcome({ kind: 'ledger-unavailable' })).to.equal('requeue');
    expect(decideOutcome({ kind: 'retry' })).to.equal('requeue');
  });

  it('dead-letters an unusable message whatever became of its error reply, unless its connection is gone', function () {
    expect(FATES.map((reply) => decideOutcome({ kind: 'unusable', reply }))).to.deep.equal([
      'dead-letter',
      'dead-letter',
      'dead-letter',
      'requeue',
    ]);
  });

  it('dead-letters a refused reply_to and a redelivery of a given-up reply; acks a redelivery of a confirmed one', function () {
    expect(decideOutcome({ kind: 'reply-to-refused' })).to.equal('dead-letter');
    expect(decideOutcome({ kind: 'already-abandoned' })).to.equal('dead-letter');
    expect(decideOutcome({ kind: 'already-answered' })).to.equal('ack');
  });

  it('acks invalid inputs once the error reply is confirmed; dead-letters them when it is not (nothing counts the tries)', function () {
    expect(FATES.map((reply) => decideOutcome({ kind: 'invalid-inputs', reply }))).to.deep.equal([
      'ack',
      'dead-letter',
      'dead-letter',
      'requeue',
    ]);
  });

  it('acks a replay once confirmed; requeues a failed one; dead-letters a given-up one', function () {
    expect(FATES.map((reply) => decideOutcome({ kind: 'replayed', reply }))).to.deep.equal([
      'ack',
      'requeue',
      'dead-letter',
      'requeue',
    ]);
  });

  it('acks a success once its reply is confirmed, and only then', function () {
    const finished = (reply: ReplyFate) => decideOutcome({ kind: 'finished', attempt: 1, maxAttempts: 3, reply });
    expect(FATES.map(finished)).to.deep.equal(['ack', 'requeue', 'dead-letter', 'requeue']);
  });

  it('answers errors by their kind: final → ack, unusable → dead-letter, retryable on the last attempt → dead-letter', function () {
    const finished = (error: WorkerError, attempt: number, reply: ReplyFate = 'confirmed') =>
      decideOutcome({ kind: 'finished', error, attempt, maxAttempts: 3, reply });
    expect(finished(new FunctionError('no'), 1)).to.equal('ack');
    expect(finished(new InvalidMessageError('bad'), 1)).to.equal('dead-letter');
    expect(finished(new RetryableError('down'), 3)).to.equal('dead-letter');
    expect(finished(new WorkerError('exhausted', { code: 'attempts_exhausted', deadLetter: true }), 4)).to.equal('dead-letter');
    // The reply's fate overrides: an unconfirmed answer is never acked away.
    expect(finished(new FunctionError('no'), 1, 'failed')).to.equal('requeue');
    expect(finished(new FunctionError('no'), 1, 'abandoned')).to.equal('dead-letter');
    expect(finished(new RetryableError('down'), 3, 'connection-lost')).to.equal('requeue');
  });
});
