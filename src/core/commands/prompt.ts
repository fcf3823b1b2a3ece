/**
 * Yes/no questions read line by line from a stream (stdin), so answers can be typed or
 * piped (`printf 'y\nn\n' | worker customize`). End of input answers "no": a script
 * that runs out of answers never imports something it did not agree to.
 */
import readline from 'node:readline';
import type { Readable } from 'node:stream';

export type Ask = (question: string) => Promise<boolean>;

export interface LinePrompt {
  ask: Ask;
  close(): void;
}

/**
 * Asks `question (y/n) ` and waits for a line: `y`/`yes` is yes, `n`/`no` is no (any
 * case), anything else asks again. When the input is not a terminal the answer is
 * echoed, so a piped transcript reads like a typed one.
 */
export function linePrompt(input: Readable & { isTTY?: boolean }, write: (text: string) => void): LinePrompt {
  const lines: string[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  const rl = readline.createInterface({ input, terminal: false });
  rl.on('line', (line) => {
    lines.push(line);
    wake?.();
  });
  rl.on('close', () => {
    ended = true;
    wake?.();
  });
  const nextLine = async (): Promise<string | undefined> => {
    while (lines.length === 0 && !ended) await new Promise<void>((r) => (wake = r));
    wake = undefined;
    return lines.shift();
  };
  const echo = !input.isTTY;
  return {
    async ask(question) {
      for (;;) {
        write(`${question} (y/n) `);
        const line = await nextLine();
        if (line === undefined) {
          write('(no answer)\n');
          return false;
        }
        if (echo) write(`${line}\n`);
        const answer = line.trim().toLowerCase();
        if (answer === 'y' || answer === 'yes') return true;
        if (answer === 'n' || answer === 'no') return false;
        write('Please answer y or n.\n');
      }
    },
    close() {
      rl.close();
    },
  };
}
