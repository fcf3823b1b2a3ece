/** replyToSyntaxProblem: reply_to names that can never work, judged from the name alone. */
import { expect } from 'chai';
import { replyToSyntaxProblem } from '../../../../src/core/runtime/reply-publisher.js';

describe('replyToSyntaxProblem', function () {
  it('accepts queue names and direct reply-to names as the broker hands them out', function () {
    for (const name of [
      'amq.gen-C_velwjuCB8zLs75pDDN3Q',
      'soar_replies',
      'amq.rabbitmq.reply-to.g1h2AA1yZXBseUA5MjQ4ODg0AAADJgAAAABrFkm8.jJ8jeR7rCa5CaDlCxN2zbg==',
      'x'.repeat(255),
    ]) {
      expect(replyToSyntaxProblem(name), name).to.equal(undefined);
    }
  });

  it('refuses a name RabbitMQ would refuse, the bare direct reply-to pseudo-queue, and a malformed direct reply-to name', function () {
    expect(replyToSyntaxProblem('é'.repeat(128))).to.equal('reply_to is 256 bytes long; RabbitMQ accepts at most 255');
    expect(replyToSyntaxProblem('bad\nname')).to.equal('reply_to contains control characters');
    expect(replyToSyntaxProblem('amq.rabbitmq.reply-to')).to.contain('bare "amq.rabbitmq.reply-to"');
    expect(replyToSyntaxProblem('amq.rabbitmq.reply-to.has space')).to.equal(
      'reply_to "amq.rabbitmq.reply-to.has space" is not a direct reply-to name the broker hands out',
    );
  });
});
