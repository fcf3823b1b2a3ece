/**
 * A plugin whose customizations folder is chosen by the test (env CUSTOMIZE_TEST_DIR),
 * so `worker customize` tests get their own queue and function names on the shared
 * broker. Like fn_slack, its functions' input schemas are read from that folder's
 * functions/*.json, and its destination from message_destinations/.
 * test/support/customizations-fixture.ts writes such a folder.
 */
import fs from 'node:fs';
import path from 'node:path';
import { definePlugin, type FunctionDefinition } from '../../src/core/runtime/plugin.js';

const dir = process.env.CUSTOMIZE_TEST_DIR;
if (!dir) throw new Error('customize-plugin: set CUSTOMIZE_TEST_DIR to a folder written by writeCustomizations');
const readDir = (folder: string) =>
  fs
    .readdirSync(path.join(dir, folder))
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, folder, f), 'utf8')) as Record<string, any>);

const functions: FunctionDefinition<null>[] = readDir('functions').map((f) => ({
  name: f.name,
  displayName: f.display_name,
  description: f.description,
  inputSchema: f.input_schema,
  handler: async (ctx) => ({ content: { echoed: ctx.inputs.text } }),
}));

export default definePlugin<Record<string, unknown>, null>({
  packageName: 'fn_custom',
  packageVersion: '1.0.0',
  configSection: 'fn_custom',
  configSchema: { type: 'object' },
  destination: String(readDir('message_destinations')[0]?.programmatic_name),
  customizationsDir: dir,
  functions,
  async setup() {
    return null;
  },
  async selftest() {
    return { state: 'success' };
  },
});
