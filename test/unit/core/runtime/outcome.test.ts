/**
 * decideOutcome: the one place that turns what happened to a delivery into ack, requeue,
 * dead-letter or retry later (issue #12 items 2 and 3), and failureIsFinal, which says
 * whether a handler's error is answered now. Every kind, with every reply fate that matters.
 */
import { expect } from 'chai';
import { FunctionError, InvalidMessageError, RetryableError, WorkerError } from '../../../../src/core/runtime/errors.js';
import { decideOutcome, failureIsFinal, type ReplyFate } from '../../../../src/core/runtime/outcome.js';
import { describeDisposition, isRetryLater } from '../../../../src/core/runtime/transport.js';

const FATES: ReplyFate[] = ['confirmed', 'failed', 'abandoned', 'connection-lost'];

describe('decideOutcome', function () {
  it('requeues at once when shutting down (the invocation was not started)', function () {
    expect(decideOutcome({ kind: 'shutting-down' })).to.equal('requeue');
  });

  it('retries later, after the given delay, when the ledger is unavailable and for a pending retry', function () {
    expect(decideOutcome({ kind: 'ledger-unavailable', retryAfterMs: 1000 })).to.deep.equal({ retryAfterMs: 1000 });
    expect(decideOutcome({ kind: 'retry', retryAfterMs: 4000 })).to.deep.equal({ retryAfterMs: 4000 });
  });

  it('dead-letters an unusable message whatever became of its error reply, unless its connection is gone', function () {
    expect(FATES.map((reply) => decideOutcome({ kind: 'unusable', reply }))).to.deep.equal(['dead-letter', 'dead-letter', 'dead-letter', 'requeue']);
  });

  it('dead-letters a refused reply_to and a redelivery of a given-up reply; acks a redelivery of a confirmed one', function () {
    expect(decideOutcome({ kind: 'reply-to-refused' })).to.equal('dead-letter');
    expect(decideOutcome({ kind: 'already-abandoned' })).to.equal('dead-letter');
    expect(decideOutcome({ kind: 'already-answered' })).to.equal('ack');
  });

  it('acks invalid inputs once the error reply is confirmed; dead-letters them when it is not (nothing counts the tries)', function () {
    expect(FATES.map((reply) => decideOutcome({ kind: 'invalid-inputs', reply }))).to.deep.equal(['ack', 'dead-letter', 'dead-letter', 'requeue']);
  });

  it('acks a replay once confirmed; retries a failed one later; dead-letters a given-up one', function () {
    expect(FATES.map((reply) => decideOutcome({ kind: 'replayed', reply, retryAfterMs: 2000 }))).to.deep.equal([
      'ack',
      { retryAfterMs: 2000 },
      'dead-letter',
      'requeue',
    ]);
  });

  it('acks a success once its reply is confirmed, and only then', function () {
    const finished = (reply: ReplyFate) => decideOutcome({ kind: 'finished', reply, retryAfterMs: 1000 });
    expect(FATES.map(finished)).to.deep.equal(['ack', { retryAfterMs: 1000 }, 'dead-letter', 'requeue']);
  });

  it('answers final errors by their kind: final → ack, unusable → dead-letter, retryable (last attempt) → dead-letter', function () {
    const finished = (error: WorkerError, reply: ReplyFate = 'confirmed') => decideOutcome({ kind: 'finished', error, reply, retryAfterMs: 8000 });
    expect(finished(new FunctionError('no'))).to.equal('ack');
    expect(finished(new InvalidMessageError('bad'))).to.equal('dead-letter');
    expect(finished(new RetryableError('down'))).to.equal('dead-letter');
    expect(finished(new WorkerError('exhausted', { code: 'attempts_exhausted', deadLetter: true }))).to.equal('dead-letter');
    // The reply's fate overrides: an unconfirmed answer is never acked away.
    expect(finished(new FunctionError('no'), 'failed')).to.deep.equal({ retryAfterMs: 8000 });
    expect(finished(new FunctionError('no'), 'abandoned')).to.equal('dead-letter');
    expect(finished(new RetryableError('down'), 'connection-lost')).to.equal('requeue');
  });
});

describe('failureIsFinal', function () {
  it('ends unusable messages and final errors at once; retries retryable ones until the last attempt', function () {
    expect(failureIsFinal(new InvalidMessageError('x'), 1, 5)).to.equal(true);
    expect(failureIsFinal(new FunctionError('x'), 1, 5)).to.equal(true);
    expect(failureIsFinal(new RetryableError('x'), 4, 5)).to.equal(false);
    expect(failureIsFinal(new RetryableError('x'), 5, 5)).to.equal(true);
    expect(failureIsFinal(new RetryableError('x'), 6, 5)).to.equal(true);
  });
});

describe('Disposition helpers', function () {
  it('tell a delayed retry from the plain dispositions and describe each for logs', function () {
    expect(['ack', 'requeue', 'dead-letter', { retryAfterMs: 5 }].map((d) => isRetryLater(d as never))).to.deep.equal([false, false, false, true]);
    expect(describeDisposition({ retryAfterMs: 1500 })).to.equal('retry-later (1500 ms)');
    expect(describeDisposition('dead-letter')).to.equal('dead-letter');
  });
});
