/**
 * Handling gives way to receiving: while an envelope has waited longer than the
 * pressure threshold for its record, giveWay waits until it is recorded (or the bound,
 * or an abort); otherwise it does not wait at all. The clock is a counter the test moves.
 */
import { expect } from 'chai';
import { ReceiveActivity } from '../../../../../src/functions/slack/inbound/receive-activity.js';

function deferred(): { promise: Promise<void>; resolve: () => void; reject: (e: Error) => void } {
  let resolve!: () => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Whether `p` has settled after the current microtasks and one macrotask turn. */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(
    () => (done = true),
    () => (done = true),
  );
  await new Promise((r) => setImmediate(r));
  return done;
}

describe('ReceiveActivity', () => {
  let clock = 0;
  const now = () => clock;
  beforeEach(() => (clock = 1000));

  it('does not hold handling back while every envelope is recorded within the pressure threshold', async () => {
    const activity = new ReceiveActivity(20, 60_000, now);
    const record = deferred();
    const tracked = activity.track(() => record.promise);
    clock += 20; // exactly at the threshold: not behind
    expect(activity.receiving).to.equal(1);
    expect(activity.behind()).to.equal(false);
    expect(await settled(activity.giveWay())).to.equal(true);
    record.resolve();
    await tracked;
    expect(activity.receiving).to.equal(0);
  });

  it('holds handling back while an envelope waits longer, until the late ones are recorded', async () => {
    const activity = new ReceiveActivity(20, 60_000, now);
    const first = deferred();
    const second = deferred();
    const t1 = activity.track(() => first.promise);
    clock += 15;
    const t2 = activity.track(() => second.promise);
    clock += 10; // the first has waited 25 ms, the second 10 ms
    expect(activity.behind()).to.equal(true);
    const waiting = activity.giveWay();
    expect(await settled(waiting)).to.equal(false);
    second.resolve(); // the younger one done: the older one still waits
    await t2;
    expect(await settled(waiting)).to.equal(false);
    first.resolve();
    await t1;
    expect(await settled(waiting)).to.equal(true);
  });

  it('a record that fails counts as done too, and its error reaches the receiver', async () => {
    const activity = new ReceiveActivity(20, 60_000, now);
    const record = deferred();
    const tracked = activity.track(() => record.promise);
    clock += 50;
    const waiting = activity.giveWay();
    record.reject(new Error('broker gone'));
    let error: Error | undefined;
    await tracked.catch((e: Error) => (error = e));
    expect(error?.message).to.equal('broker gone');
    expect(activity.receiving).to.equal(0);
    expect(await settled(waiting)).to.equal(true);
  });

  it('waits at most maxWaitMs, and not at all once the signal aborted', async () => {
    const activity = new ReceiveActivity(20, 30, now);
    const stuck = deferred();
    void activity.track(() => stuck.promise);
    clock += 100;
    await activity.giveWay(); // resolves by the bound alone: the record never settles
    const controller = new AbortController();
    const waiting = activity.giveWay(controller.signal);
    controller.abort();
    expect(await settled(waiting)).to.equal(true);
    controller.abort();
    expect(await settled(activity.giveWay(controller.signal))).to.equal(true);
    stuck.resolve();
  });
});
