/**
 * A test plugin whose one function kills its own worker process (SIGKILL), as an
 * out-of-memory kill or a native crash would: the poison message of the fault tests.
 * Loaded next to echo-plugin.ts through `[worker] plugins`.
 */
import { definePlugin } from '../../src/core/runtime/plugin.js';

const plugin = definePlugin<Record<string, never>, null>({
  packageName: 'fn_test_crash',
  packageVersion: '1.0.0',
  configSection: 'fn_test_crash',
  destination: 'fn_test',
  configSchema: { type: 'object', properties: {} },
  async setup() {
    return null;
  },
  async selftest() {
    return { state: 'success' };
  },
  functions: [
    {
      name: 'test_kill_worker',
      displayName: 'Test: kill the worker',
      description: 'Kills the worker process running it, every time',
      inputSchema: { type: 'object', properties: {} },
      async handler() {
        process.kill(process.pid, 'SIGKILL');
        // SIGKILL is not delivered synchronously everywhere: never return a result.
        await new Promise(() => undefined);
        return { content: {} };
      },
    },
  ],
});

export default plugin;
