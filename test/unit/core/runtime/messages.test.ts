import { expect } from 'chai';
import { FunctionError, InvalidMessageError, RetryableError, toWorkerError, UnknownFunctionError } from '../../../../src/core/runtime/errors.js';
import { errorReply, parseInvocation, progressReply, resultReply, withoutNulls } from '../../../../src/core/runtime/messages.js';
import { clearSecrets, registerSecret } from '../../../../src/core/redact.js';

const env = (body: unknown, props: Record<string, string> = {}) => ({
  body: Buffer.from(typeof body === 'string' ? body : JSON.stringify(body)),
  ...props,
});

describe('messages', () => {
  afterEach(() => clearSecrets());

  it('parses a resilient-circuits style body', () => {
    const inv = parseInvocation(
      env(
        { function: { name: 'slack_post_message' }, inputs: { incident_id: 2103 }, workflow: { programmatic_name: 'wf' }, principal: { name: 'a@b' } },
        { messageId: 'm-1', correlationId: 'c-1' },
      ),
      1000,
    );
    expect(inv).to.deep.include({ id: 'm-1', functionName: 'slack_post_message', inputs: { incident_id: 2103 } });
    expect(inv.origin.workflow).to.deep.equal({ programmatic_name: 'wf' });
  });

  it('falls back to correlation_id, then a fresh id', () => {
    expect(parseInvocation(env({ function: { name: 'f' } }, { correlationId: 'c-9' }), 1000).id).to.equal('c-9');
    const fresh = parseInvocation(env({ function: { name: 'f' } }), 1000);
    expect(fresh.id).to.match(/^[0-9a-f-]{36}$/);
  });

  it('refuses oversized, non-JSON, non-object and nameless bodies with the right class and code', () => {
    const cases: [unknown, string, new (...a: any[]) => Error][] = [
      ['x'.repeat(2000), 'message_too_large', InvalidMessageError],
      ['{"a":', 'invalid_json', InvalidMessageError],
      ['null', 'invalid_message', InvalidMessageError],
      ['"str"', 'invalid_message', InvalidMessageError],
      [{ function: 'f' }, 'missing_function', UnknownFunctionError],
      [{ function: { name: '  ' } }, 'missing_function', UnknownFunctionError],
      [{ function: { name: 'f' }, inputs: [1] }, 'invalid_message', InvalidMessageError],
    ];
    for (const [body, code, cls] of cases) {
      let err: any;
      try {
        parseInvocation(env(body), 1500);
      } catch (e) {
        err = e;
      }
      expect(err, code).to.be.instanceOf(cls);
      expect(err.code).to.equal(code);
      expect(err.deadLetter).to.equal(true);
    }
  });

  it('refuses bodies that are not UTF-8, empty, or JSON of the wrong kind, saying which', () => {
    const bad = (body: Buffer | string) => {
      try {
        parseInvocation({ body: Buffer.isBuffer(body) ? body : Buffer.from(body) }, 10_000);
      } catch (err) {
        return err as InvalidMessageError;
      }
      throw new Error('accepted');
    };
    const latin1 = Buffer.from('{"function":{"name":"f"},"inputs":{"text":"caf\u00e9"}}', 'latin1');
    expect(bad(latin1)).to.include({ code: 'invalid_encoding', message: 'Message body is not valid UTF-8: send the JSON encoded as UTF-8' });
    expect(bad(Buffer.from([0xff, 0xfe, 0x7b, 0x7d]))).to.include({ code: 'invalid_encoding' });
    expect(bad('')).to.include({ code: 'invalid_json' }).and.property('message').that.matches(/^Message body is empty/);
    expect(bad('  \n')).to.include({ code: 'invalid_json' }).and.property('message').that.matches(/^Message body is empty/);
    expect(bad('null').message).to.match(/got null$/);
    expect(bad('12').message).to.match(/got a number$/);
    expect(bad('[]').message).to.match(/got an array$/);
    expect(bad('{"function":{"name":"f"},"inputs":"x"}').message).to.match(/"inputs" must be a JSON object .* got a string$/);
  });

  it('names a function name with invisible characters JSON-escaped, so the error shows them', () => {
    for (const [name, shown] of [['test_\u202eohce', '"test_\\u202eohce"'], ['test_echo\u200b', '"test_echo\\u200b"'], ['\u{f0000}', '"\\udb80\\udc00"'], ['a\u0000', '"a\\u0000"'], ['\ud800x', '"\\ud800x"']]) {
      let err: UnknownFunctionError | undefined;
      try {
        parseInvocation(env({ function: { name } }), 1000);
      } catch (e) {
        err = e as UnknownFunctionError;
      }
      expect(err, name).to.be.instanceOf(UnknownFunctionError);
      expect(err!.code).to.equal('unknown_function');
      expect(err!.message).to.equal(`Function name ${shown} contains control or invisible characters; no function has such a name`);
    }
  });

  it('keeps an input named __proto__ as an own (unknown) input instead of a prototype', () => {
    const inv = parseInvocation(env('{"function":{"name":"f"},"inputs":{"__proto__":{"text":"inherited"},"a":null}}'), 1000);
    const inputs = withoutNulls(inv.inputs);
    expect(Object.getPrototypeOf(inputs)).to.equal(Object.prototype);
    expect(Object.keys(inputs)).to.deep.equal(['__proto__']);
    expect((inputs as Record<string, unknown>).text).to.equal(undefined);
  });

  it('drops null inputs (SOAR sends unset inputs as null)', () => {
    expect(withoutNulls({ a: null, b: 0, c: '', d: false })).to.deep.equal({ b: 0, c: '', d: false });
  });

  it('builds ResultPayload v2 and masks secrets in replies', () => {
    registerSecret('xoxb-secret-token');
    const reply = resultReply(
      { content: { note: 'used xoxb-secret-token' } },
      { packageName: 'fn_x', packageVersion: '1.2.3', inputs: { api_token: 'abc', a: 1 }, startedAt: 1000, now: 1250, host: 'h1' },
    );
    expect(reply).to.deep.equal({
      message_type: 0,
      message: 'Completed',
      complete: true,
      results: {
        version: 2,
        success: true,
        reason: null,
        content: { note: 'used ***' },
        raw: null,
        inputs: { api_token: '***', a: 1 },
        metrics: { version: 1, package: 'fn_x', package_version: '1.2.3', host: 'h1', execution_time_ms: 250, timestamp: '1970-01-01 00:00:01' },
      },
    });
    expect(progressReply('token xoxb-secret-token')).to.deep.equal({ message_type: 0, message: 'token ***', complete: false });
    expect(errorReply(new RetryableError('down: amqp://u:pw@h', 'x_down'))).to.deep.equal({
      message_type: 1,
      message: 'down: amqp://u:***@h',
      complete: true,
      error: { code: 'x_down', retryable: true },
    });
  });
});

describe('error taxonomy', () => {
  it('wraps unknown exceptions as retryable internal errors', () => {
    const err = toWorkerError(new TypeError('boom'));
    expect(err.code).to.equal('internal_error');
    expect(err.retryable).to.equal(true);
    expect(err.message).to.equal('Internal error: boom');
    const same = new FunctionError('keep');
    expect(toWorkerError(same)).to.equal(same);
  });
});
