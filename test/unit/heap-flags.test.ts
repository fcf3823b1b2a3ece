import { expect } from 'chai';
import { operatorSetHeapFlags } from '../../src/heap-flags.js';

describe('heap flags of the worker command', () => {
  it('leaves V8 alone when NODE_OPTIONS sizes the heap (the systemd unit)', () => {
    expect(operatorSetHeapFlags('--max-old-space-size=1024 --max-semi-space-size=8', [])).to.equal(true);
    expect(operatorSetHeapFlags('--max_old_space_size=512', [])).to.equal(true);
  });

  it("leaves V8 alone when node's command line sizes the heap or opts out", () => {
    expect(operatorSetHeapFlags(undefined, ['--max-semi-space-size=4'])).to.equal(true);
    expect(operatorSetHeapFlags('', ['--no-optimize-for-size'])).to.equal(true);
    expect(operatorSetHeapFlags(undefined, ['--heap-growing-percent=50'])).to.equal(true);
  });

  it('sets its own when nothing sizes the heap, whatever else node was given', () => {
    expect(operatorSetHeapFlags(undefined, [])).to.equal(false);
    expect(operatorSetHeapFlags('--enable-source-maps --import tsx', ['--cpu-prof', '--max-http-header-size=16384'])).to.equal(false);
  });
});
