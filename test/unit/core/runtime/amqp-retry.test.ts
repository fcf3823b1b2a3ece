/**
 * The retry copy of a request (amqp-retry.ts): the caller's properties and headers are
 * kept, the broker's own headers dropped, the delay becomes the expiration, and the copy
 * is marked so that the transport treats it like a redelivery.
 */
import type { MessageProperties } from 'amqplib';
import { expect } from 'chai';
import { isRetryCopy, RETRY_HEADER, retryCopyOptions } from '../../../../src/core/runtime/amqp-retry.js';

function props(extra: Partial<MessageProperties> = {}): MessageProperties {
  return {
    contentType: 'application/json',
    contentEncoding: undefined,
    headers: {},
    deliveryMode: 2,
    priority: undefined,
    correlationId: 'c-1',
    replyTo: 'amq.gen-reply',
    expiration: undefined,
    messageId: 'm-1',
    timestamp: 1_700_000_000,
    type: undefined,
    userId: undefined,
    appId: 'soar',
    clusterId: undefined,
    ...extra,
  };
}

describe('amqp retry copy', function () {
  it("keeps the caller's properties and headers, persistent and mandatory, with the delay as its expiration", function () {
    const options = retryCopyOptions(props({ headers: { 'x-caller-tag': 'keep-me', n: 3 } }), 2000, 'token-1');
    expect(options).to.deep.equal({
      persistent: true,
      mandatory: true,
      expiration: '2000',
      headers: { 'x-caller-tag': 'keep-me', n: 3, [RETRY_HEADER]: 'token-1' },
      messageId: 'm-1',
      correlationId: 'c-1',
      replyTo: 'amq.gen-reply',
      contentType: 'application/json',
      timestamp: 1_700_000_000,
      appId: 'soar',
    });
  });

  it("drops the broker's dead-lettering headers, the delivery count and user_id; rounds the delay to whole ms, never below 0", function () {
    const copy = retryCopyOptions(
      props({
        userId: 'caller',
        headers: {
          'x-death': [
            { count: 1, reason: 'expired', queue: 'q.retry', time: { '!': 'timestamp', value: 1 }, exchange: '', 'routing-keys': ['q.retry'] },
          ],
          'x-first-death-queue': 'q.retry',
          'x-first-death-reason': 'expired',
          'x-first-death-exchange': '',
          'x-delivery-count': 2,
          [RETRY_HEADER]: 'old-token',
          kept: true,
        },
      }),
      1234.6,
      'new-token',
    );
    expect(copy.headers).to.deep.equal({ kept: true, [RETRY_HEADER]: 'new-token' });
    expect(copy).not.to.have.property('userId');
    expect(copy.expiration).to.equal('1235');
    expect(retryCopyOptions(props(), -5, 't').expiration).to.equal('0');
  });

  it('tells a retry copy by its header', function () {
    expect(isRetryCopy({ [RETRY_HEADER]: 'x' })).to.equal(true);
    expect(isRetryCopy({ other: 1 })).to.equal(false);
    expect(isRetryCopy(undefined)).to.equal(false);
  });
});
