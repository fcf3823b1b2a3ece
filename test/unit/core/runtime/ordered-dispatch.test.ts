import { expect } from 'chai';
import sinon from 'sinon';
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

  describe('release order under a fake clock', () => {
    let clock: sinon.SinonFakeTimers;
    beforeEach(() => {
      clock = sinon.useFakeTimers();
    });
    afterEach(() => clock.restore());

    it('releases a burst held together by number, each once, equal numbers in the order they came, keys apart', async () => {
      const d = new OrderedDispatch();
      const ran: string[] = [];
      // 300 deliveries of two keys, numbered out of order with repeats (a fixed shuffle).
      const sent: { key: string; seq: number; tag: string }[] = [];
      for (let i = 0; i < 300; i++) sent.push({ key: i % 3 === 0 ? 'b' : 'a', seq: (i * 37) % 101, tag: `#${i}` });
      for (const s of sent) d.dispatch(s.key, async () => void ran.push(`${s.key} ${s.seq} ${s.tag}`), s.seq, 1000);
      await clock.tickAsync(999);
      expect(ran).to.deep.equal([]);
      await clock.tickAsync(1);
      // Array.prototype.sort is stable: equal numbers stay in dispatch order.
      const expected = (key: string) =>
        sent
          .filter((s) => s.key === key)
          .sort((x, y) => x.seq - y.seq)
          .map((s) => `${s.key} ${s.seq} ${s.tag}`);
      expect(ran.filter((r) => r.startsWith('a '))).to.deep.equal(expected('a'));
      expect(ran.filter((r) => r.startsWith('b '))).to.deep.equal(expected('b'));
      await clock.tickAsync(10_000);
      expect(ran).to.have.length(300);
      expect(d.pending).to.equal(0);
    });

    it('a delivery released early with a higher number does not run again when its own window ends', async () => {
      const d = new OrderedDispatch();
      const ran: number[] = [];
      d.dispatch('k', async () => void ran.push(3), 3, 500); // a queue with a longer window
      d.dispatch('k', async () => void ran.push(7), 7, 100);
      d.dispatch('k', async () => void ran.push(9), 9, 500);
      await clock.tickAsync(100);
      expect(ran).to.deep.equal([3, 7]);
      await clock.tickAsync(1000);
      expect(ran).to.deep.equal([3, 7, 9]);
      expect(d.pending).to.equal(0);
    });

    it('holds each delivery only its own window: a later one waits for its own, not for the first', async () => {
      const d = new OrderedDispatch();
      const ran: number[] = [];
      d.dispatch('k', async () => void ran.push(1), 1, 100);
      await clock.tickAsync(60);
      d.dispatch('k', async () => void ran.push(2), 2, 100);
      await clock.tickAsync(40);
      expect(ran).to.deep.equal([1]);
      await clock.tickAsync(59);
      expect(ran).to.deep.equal([1]);
      await clock.tickAsync(1);
      expect(ran).to.deep.equal([1, 2]);
    });
  });
});
