/**
 * Sections of app.config: an unknown one is reported like an unknown key, and
 * app.config.example lists every key of every section the worker reads.
 */
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT, tempDir } from '../../support/harness.js';
import { ConfigError } from '../../../src/core/runtime/errors.js';
import { silentLogger } from '../../../src/core/logging.js';
import { loadEnvironment } from '../../../src/core/runtime/worker.js';
import { configSectionsFor } from '../../../src/core/commands/config-writer.js';
import { builtinPlugins } from '../../../src/functions/index.js';
import { PLATFORM_CONFIG_SECTIONS } from '../../../src/platforms/index.js';

function configFile(text: string): string {
  const file = path.join(tempDir(), 'app.config');
  fs.writeFileSync(file, text, { mode: 0o600 });
  return file;
}

describe('config sections', () => {
  it('an unknown section is reported with file and name, like an unknown key', async () => {
    const file = configFile('[worker]\nnum_workers = 3\n\n[fn_slak]\napi_token = xoxb-1\n');
    let caught: unknown;
    await loadEnvironment(file, builtinPlugins, silentLogger(), false).catch((e) => (caught = e));
    expect(caught).to.be.instanceOf(ConfigError);
    expect((caught as Error).message).to.equal(
      `${file}: [fn_slak] is not a known section; check its spelling (known: worker, fn_slack, soar)`,
    );
  });

  it('an unknown section stops commands that skip the packages\' settings too (invoke, functions)', async () => {
    const file = configFile('[worker]\n\n[fn_slack]\napi_token = xoxb-1\n\n[workers]\nnum_workers = 3\n');
    let caught: unknown;
    await loadEnvironment(file, builtinPlugins, silentLogger(), false, { validatePluginConfigs: false }).catch((e) => (caught = e));
    expect((caught as Error)?.message).to.contain(`${file}: [workers] is not a known section`);
  });

  it('[soar] is known whatever the platform', async () => {
    const file = configFile('[worker]\n\n[fn_slack]\napi_token = xoxb-1\n\n[soar]\nbase_url = https://soar.example.com\n');
    const env = await loadEnvironment(file, builtinPlugins, silentLogger(), false);
    expect(env.section.platform).to.equal('local');
  });

  it('[worker] destinations left out is each loaded package\'s destination; one given is kept', async () => {
    const defaulted = await loadEnvironment(configFile('[worker]\n\n[fn_slack]\napi_token = xoxb-1\n'), builtinPlugins, silentLogger(), false);
    expect(defaulted.section.destinations).to.equal(builtinPlugins.map((p) => p.destination).join(', '));
    expect(defaulted.section.destinations).to.equal('fn_slack');
    const given = await loadEnvironment(configFile('[worker]\ndestinations = q1, q2\n\n[fn_slack]\napi_token = xoxb-1\n'), builtinPlugins, silentLogger(), false);
    expect(given.section.destinations).to.equal('q1, q2');
  });

  it('app.config.example lists every key of every section (active or commented out), and no other', () => {
    const text = fs.readFileSync(path.join(REPO_ROOT, 'app.config.example'), 'utf8');
    const inExample: Record<string, string[]> = {};
    let section = '';
    for (const line of text.split('\n')) {
      const header = /^;?\[([A-Za-z0-9_]+)\]\s*$/.exec(line);
      if (header) {
        section = header[1]!;
        inExample[section] = [];
        continue;
      }
      // `key = value` or `;key = value`; prose comments start with "; ".
      const key = /^;?([a-z][a-z0-9_]*)\s*=/.exec(line);
      if (key && section) inExample[section]!.push(key[1]!);
    }
    const expected: Record<string, string[]> = {};
    for (const spec of configSectionsFor(builtinPlugins, { platformSections: PLATFORM_CONFIG_SECTIONS })) expected[spec.name] = Object.keys(spec.schema.properties as object).sort();
    for (const keys of Object.values(inExample)) keys.sort();
    expect(inExample).to.deep.equal(expected);
  });
});
