import { expect } from 'chai';
import { BACKOFF, backoffDelay, sleep, type BackoffPolicy } from '../../../src/core/backoff.js';

describe('backoff', () => {
  it('grows by the factor from the initial delay and stops at the cap', () => {
    const seq = [1, 2, 3, 4, 5, 6, 7].map((a) => backoffDelay(BACKOFF.retry, a));
    expect(seq).to.deep.equal([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    expect(backoffDelay(BACKOFF.retry, 0)).to.equal(1000); // attempts below 1 count as the first
    expect(backoffDelay(BACKOFF.retry, 10_000)).to.equal(30_000); // no overflow to Infinity or NaN
  });

  it('equal jitter lies in [d/2, d]; ratio jitter in [d(1-r), d(1+r)]', () => {
    const equal: BackoffPolicy = { initialMs: 800, maxMs: 10_000, factor: 2, jitter: 'equal' };
    expect(backoffDelay(equal, 2, () => 0)).to.equal(800);
    expect(backoffDelay(equal, 2, () => 0.999999)).to.be.closeTo(1600, 0.01);
    expect(backoffDelay(BACKOFF.reconnect, 1, () => 0)).to.equal(200);
    expect(backoffDelay(BACKOFF.reconnect, 1, () => 1)).to.equal(300);
    expect(backoffDelay(BACKOFF.reconnect, 1, () => 0.5)).to.equal(250);
  });

  it('sleep waits, resolves early on abort, or rejects with the given error', async () => {
    const t0 = Date.now();
    await sleep(30);
    expect(Date.now() - t0).to.be.at.least(25);

    const ac = new AbortController();
    const started = Date.now();
    const waiting = sleep(60_000, ac.signal);
    setTimeout(() => ac.abort(), 10);
    await waiting;
    expect(Date.now() - started).to.be.below(5_000);

    const ac2 = new AbortController();
    ac2.abort();
    let caught: unknown;
    await sleep(60_000, ac2.signal, () => new Error('stopped')).catch((e) => (caught = e));
    expect((caught as Error).message).to.equal('stopped');
  });

  it('sleep removes its abort listener when it ends normally (a long-lived signal does not collect them)', async () => {
    const ac = new AbortController();
    let added = 0;
    let removed = 0;
    const add = ac.signal.addEventListener.bind(ac.signal);
    const remove = ac.signal.removeEventListener.bind(ac.signal);
    ac.signal.addEventListener = ((...args: Parameters<typeof add>) => (added++, add(...args))) as typeof add;
    ac.signal.removeEventListener = ((...args: Parameters<typeof remove>) => (removed++, remove(...args))) as typeof remove;
    for (let i = 0; i < 5; i++) await sleep(1, ac.signal);
    expect(added).to.equal(5);
    expect(removed).to.equal(5);
  });
});
