import { PassThrough } from 'node:stream';
import { expect } from 'chai';
import { linePrompt } from '../../../../src/core/commands/prompt.js';

describe('linePrompt', () => {
  function setup(isTTY = false) {
    const input = Object.assign(new PassThrough(), { isTTY });
    let output = '';
    const prompt = linePrompt(input, (t) => (output += t));
    return { input, prompt, output: () => output };
  }

  it('reads one answer per question from piped lines, echoing them', async () => {
    const { input, prompt, output } = setup();
    input.write('y\nNo\n YES \n');
    expect(await prompt.ask('First?')).to.equal(true);
    expect(await prompt.ask('Second?')).to.equal(false);
    expect(await prompt.ask('Third?')).to.equal(true);
    expect(output()).to.equal('First? (y/n) y\nSecond? (y/n) No\nThird? (y/n)  YES \n');
    prompt.close();
  });

  it('asks again after an answer that is neither yes nor no', async () => {
    const { input, prompt, output } = setup();
    input.write('maybe\nn\n');
    expect(await prompt.ask('OK?')).to.equal(false);
    expect(output()).to.equal('OK? (y/n) maybe\nPlease answer y or n.\nOK? (y/n) n\n');
    prompt.close();
  });

  it('waits for a line typed later, and does not echo on a terminal', async () => {
    const { input, prompt, output } = setup(true);
    const answer = prompt.ask('OK?');
    await new Promise((r) => setTimeout(r, 20));
    input.write('y\n');
    expect(await answer).to.equal(true);
    expect(output()).to.equal('OK? (y/n) ');
    prompt.close();
  });

  it('answers no at the end of input, for every later question too', async () => {
    const { input, prompt, output } = setup();
    input.end('y\n');
    expect(await prompt.ask('One?')).to.equal(true);
    expect(await prompt.ask('Two?')).to.equal(false);
    expect(await prompt.ask('Three?')).to.equal(false);
    expect(output()).to.equal('One? (y/n) y\nTwo? (y/n) (no answer)\nThree? (y/n) (no answer)\n');
  });
});
