/**
 * A small plugin for testing core without Slack: echo, progress, failures, crashes,
 * slow work, and an effect counter (a file per invocation) to prove "one effect".
 */
import fs from 'node:fs';
import path from 'node:path';
import { FunctionError, RetryableError } from '../../src/core/runtime/errors.js';
import { definePlugin } from '../../src/core/runtime/plugin.js';

interface EchoConfig {
  effects_dir: string;
  fail_selftest?: boolean;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const plugin = definePlugin<EchoConfig, { effectsDir: string }>({
  packageName: 'fn_test',
  packageVersion: '1.0.0',
  configSection: 'fn_test',
  destination: 'fn_test',
  configSchema: {
    type: 'object',
    required: ['effects_dir'],
    properties: {
      effects_dir: { type: 'string', minLength: 1 },
      fail_selftest: { type: 'boolean', default: false },
    },
  },
  async setup(ctx) {
    fs.mkdirSync(ctx.config.effects_dir, { recursive: true });
    return { effectsDir: ctx.config.effects_dir };
  },
  async selftest(_state, ctx) {
    return ctx.config.fail_selftest ? { state: 'failure', reason: 'told to fail' } : { state: 'success' };
  },
  functions: [
    {
      name: 'test_echo',
      displayName: 'Test: echo',
      description: 'Returns its inputs after `steps` progress messages',
      inputSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['text'],
        properties: {
          text: { type: 'string' },
          steps: { type: 'integer', minimum: 0, maximum: 100, default: 0 },
          count: { type: 'integer', minimum: 0 },
        },
      },
      async handler(ctx, state) {
        const steps = Number(ctx.inputs.steps ?? 0);
        for (let i = 1; i <= steps; i++) await ctx.status(`step ${i} of ${steps}`);
        // One file per invocation id: a second run of the same invocation appends a line.
        fs.appendFileSync(path.join(state.effectsDir, `${ctx.invocationId}.effect`), 'x\n');
        return { content: { echoed: ctx.inputs.text, attempt: ctx.attempt } };
      },
    },
    {
      name: 'test_sleep',
      displayName: 'Test: sleep',
      description: 'Sleeps `ms` milliseconds, then records its effect',
      inputSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['ms'],
        properties: { ms: { type: 'integer', minimum: 0, maximum: 600000 } },
      },
      async handler(ctx, state) {
        // Tests wait for this line to know the invocation is running.
        ctx.log.info(`test_sleep: sleeping ${Number(ctx.inputs.ms)} ms`);
        await sleep(Number(ctx.inputs.ms));
        fs.appendFileSync(path.join(state.effectsDir, `${ctx.invocationId}.effect`), 'x\n');
        return { content: { slept: ctx.inputs.ms } };
      },
    },
    {
      name: 'test_fail',
      displayName: 'Test: fail',
      description: 'Fails with a final or a retryable error',
      inputSchema: {
        type: 'object',
        additionalProperties: false,
        properties: { retryable: { type: 'boolean', default: false } },
      },
      async handler(ctx) {
        if (ctx.inputs.retryable) throw new RetryableError('the test service is down', 'test_down');
        throw new FunctionError('the test function refused', 'test_refused');
      },
    },
    {
      name: 'test_flaky',
      displayName: 'Test: flaky',
      description: 'Fails retryably on its first `fail_times` attempts, then records its effect and succeeds',
      inputSchema: {
        type: 'object',
        additionalProperties: false,
        required: ['fail_times'],
        properties: { fail_times: { type: 'integer', minimum: 0 } },
      },
      async handler(ctx, state) {
        if (ctx.attempt <= Number(ctx.inputs.fail_times)) throw new RetryableError(`flaky: attempt ${ctx.attempt} fails`, 'test_flaky');
        fs.appendFileSync(path.join(state.effectsDir, `${ctx.invocationId}.effect`), 'x\n');
        return { content: { attempt: ctx.attempt } };
      },
    },
    {
      name: 'test_crash',
      displayName: 'Test: crash',
      description: 'Throws an unexpected exception every time',
      inputSchema: { type: 'object', properties: {} },
      async handler() {
        throw new TypeError('boom');
      },
    },
  ],
});

export default plugin;
