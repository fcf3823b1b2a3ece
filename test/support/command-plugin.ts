/**
 * A plugin that adds a CLI command (`worker greet`), loaded by path through
 * `[worker] plugins`, for the spawned-CLI tests of plugin-contributed commands.
 */
import { EXIT } from '../../src/core/exit-codes.js';
import { definePlugin } from '../../src/core/runtime/plugin.js';

interface GreetConfig {
  greeting: string;
}

const plugin = definePlugin<GreetConfig, undefined>({
  packageName: 'fn_greet',
  packageVersion: '1.0.0',
  configSection: 'fn_greet',
  destination: 'fn_greet',
  configSchema: {
    type: 'object',
    additionalProperties: false,
    properties: { greeting: { type: 'string', minLength: 1, default: 'hello' } },
  },
  functions: [],
  async setup() {
    return undefined;
  },
  async selftest() {
    return { state: 'success' };
  },
  commands: [
    {
      name: 'greet',
      description: 'Greet someone with [fn_greet] greeting',
      options: (o) => {
        o.option('who', { type: 'string', default: 'world', describe: 'whom to greet' });
        o.option('sulk', { type: 'boolean', default: false, describe: 'refuse, exiting with the plugin exit code' });
      },
      async handler(ctx) {
        if (ctx.args.sulk) {
          ctx.log.warn('not greeting anyone today');
          return EXIT.plugin;
        }
        ctx.stdout(`${ctx.pluginConfig().greeting}, ${String(ctx.args.who)} (config ${ctx.config().file})\n`);
      },
    },
  ],
});

export default plugin;
