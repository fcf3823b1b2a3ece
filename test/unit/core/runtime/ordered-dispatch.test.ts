import { expect } from 'chai';
import { OrderedDispatch } from '../../../../src/core/runtime/ordered-dispatch.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('OrderedDispatch', () => {
  it('runs one key one at a time in dispatch order, and other keys alongside', async () => {
    const d = new OrderedDispatch();
    const log: string[] = [];
    const run = (name: string, ms: number) => async () => {
      log.push(`start ${name}`);
      await sleep(ms);
      log.push(`end ${name}`);
    };
    d.dispatch('a', run('a1', 30));
    d.dispatch('a', run('a2', 1));
    d.dispatch('b', run('b1', 1));
    await sleep(80);
    expect(log.indexOf('end a1')).to.be.lessThan(log.indexOf('start a2'));
    // b did not wait for a.
    expect(log.indexOf('end b1')).to.be.lessThan(log.indexOf('end a1'));
    expect(d.pending).to.equal(0);
  });

  it('with a window, hands over a key by sequence number what reached it out of order', async () => {
    const d = new OrderedDispatch();
    const ran: number[] = [];
    const run = (n: number) => async () => {
      ran.push(n);
    };
    d.dispatch('c', run(2), 2, 40);
    d.dispatch('c', run(3), 3, 40);
    await sleep(10);
    d.dispatch('c', run(1), 1, 40);
    expect(ran).to.deep.equal([]);
    await sleep(100);
    expect(ran).to.deep.equal([1, 2, 3]);
  });

  it('runs what comes after its window when it comes (late, not lost), and at once without a number', async () => {
    const d = new OrderedDispatch();
    const ran: string[] = [];
    d.dispatch('k', async () => void ran.push('5'), 5, 10);
    await sleep(40);
    d.dispatch('k', async () => void ran.push('4'), 4, 10);
    d.dispatch('k', async () => void ran.push('no seq'));
    await sleep(40);
    expect(ran).to.deep.equal(['5', 'no seq', '4']);
  });

  it('flush releases everything held, lowest number first', async () => {
    const d = new OrderedDispatch();
    const ran: number[] = [];
    for (const n of [9, 7, 8]) d.dispatch('f', async () => void ran.push(n), n, 60_000);
    d.flush();
    await sleep(5);
    expect(ran).to.deep.equal([7, 8, 9]);
  });
});
