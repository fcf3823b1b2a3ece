/**
 * The README's exit-code table and the code's are one table: same names, same numbers,
 * each number used once; selftest's and customize's codes come from it.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../../support/harness.js';
import { EXIT } from '../../../src/core/exit-codes.js';
import { SELFTEST_EXIT } from '../../../src/core/commands/selftest.js';
import { CUSTOMIZE_EXIT } from '../../../src/core/commands/customize.js';

function readmeExitTable(): Record<string, number> {
  const text = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  const section = text.slice(text.indexOf('## Troubleshooting'));
  const rows: Record<string, number> = {};
  for (const m of section.matchAll(/^\| (\d+) \| `([a-z]+)` \| .+\|$/gm)) rows[m[2]!] = Number(m[1]);
  return rows;
}

describe('exit codes', () => {
  it('the README table lists exactly the codes of src/core/exit-codes.ts', () => {
    expect(readmeExitTable()).to.deep.equal({ ...EXIT });
  });

  it('each number means one thing', () => {
    const numbers = Object.values(EXIT);
    expect(new Set(numbers).size).to.equal(numbers.length);
  });

  it("selftest's and customize's codes are the table's, under the same names", () => {
    for (const [name, code] of [...Object.entries(SELFTEST_EXIT), ...Object.entries(CUSTOMIZE_EXIT)]) {
      expect(EXIT[name as keyof typeof EXIT], name).to.equal(code);
    }
  });

  it('the README documents no other exit number for invoke, selftest or customize', () => {
    const text = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    // "N no final reply" / "N SOAR" style mentions must agree with the table.
    expect(text).to.match(new RegExp(`${EXIT.timeout} no final reply before \`--timeout\``));
    expect(text).not.to.match(/\b3 no final reply\b/);
  });
});
