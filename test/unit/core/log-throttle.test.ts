/** LogThrottle: a repeated log line is rate-limited and says how many were suppressed. */
import { expect } from 'chai';
import { LogThrottle } from '../../../src/core/log-throttle.js';

describe('LogThrottle', function () {
  it('logs the first line of a key, suppresses repeats within the interval, then reports how many', function () {
    let t = 0;
    const throttle = new LogThrottle({ intervalMs: 10_000, now: () => t });
    expect(throttle.pass('k', 'reply refused')).to.equal('reply refused');
    const passed = [];
    for (let i = 0; i < 500; i++) {
      t += 10;
      passed.push(throttle.pass('k', 'reply refused'));
    }
    expect(passed.filter((p) => p !== undefined)).to.deep.equal([]);
    t = 10_000;
    expect(throttle.pass('k', 'reply refused')).to.equal('reply refused (500 more like this suppressed in the last 10s)');
    t = 20_001;
    expect(throttle.pass('k', 'reply refused')).to.equal('reply refused');
  });

  it('keeps keys apart and forgets the oldest beyond maxKeys', function () {
    let t = 0;
    const throttle = new LogThrottle({ intervalMs: 1000, maxKeys: 2, now: () => t });
    expect(throttle.pass('a', 'A')).to.equal('A');
    expect(throttle.pass('b', 'B')).to.equal('B');
    expect(throttle.pass('a', 'A')).to.equal(undefined);
    expect(throttle.pass('c', 'C')).to.equal('C'); // evicts a (least recently logged)
    expect(throttle.pass('a', 'A')).to.equal('A');
    expect(throttle.pass('c', 'C')).to.equal(undefined);
  });
});
