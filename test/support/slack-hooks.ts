/**
 * The mocha hooks most Slack test files share: a fresh Slack emulator for each test and,
 * for the fn_slack tests, a fixture (store, platform, fn_slack state) pointed at it; all
 * closed after the test. Call it inside a `describe` and read the fields in the tests:
 *
 *   const slack = useSlackFixture();
 *   it('posts', async () => expectOk(await runFunction(slack.fx, 'slack_post_message', …)));
 *
 * A file's own `beforeEach` registered after the call runs after these (the emulator and
 * fixture are there); what a test opens on the emulator is closed first through
 * {@link SlackEmulatorHooks.cleanup}.
 */
import type { EmulatorStartOptions } from './slack-emulator.js';
import { SlackEmulator } from './slack-emulator.js';
import { slackFixture, type SlackFixture } from './function-context.js';

export interface SlackEmulatorHooks {
  /** The running test's emulator. */
  readonly emu: SlackEmulator;
  /** Another fixture on this emulator (its own store; `token` defaults to the bot's), closed after the test. */
  fixture(overrides?: Record<string, string>, token?: string): Promise<SlackFixture>;
  /** Runs `close` after the test, before the fixtures and the emulator close (the last registered first). */
  cleanup(close: () => unknown): void;
}

export interface SlackFixtureHooks extends SlackEmulatorHooks {
  /** The running test's fixture, made with the `config` overrides given to {@link useSlackFixture}. */
  readonly fx: SlackFixture;
}

class Hooks implements SlackFixtureHooks {
  runningEmulator?: SlackEmulator;
  runningFixture?: SlackFixture;
  private closers: (() => unknown)[] = [];

  get emu(): SlackEmulator {
    if (!this.runningEmulator) throw new Error('the Slack emulator exists only while a test runs (read slack.emu inside it, or a hook)');
    return this.runningEmulator;
  }

  get fx(): SlackFixture {
    if (!this.runningFixture) throw new Error('the fixture exists only while a test of useSlackFixture runs (read slack.fx inside it, or a hook)');
    return this.runningFixture;
  }

  async fixture(overrides: Record<string, string> = {}, token = this.emu.botToken): Promise<SlackFixture> {
    const fx = await slackFixture(this.emu.apiUrl, token, overrides);
    this.cleanup(() => fx.close());
    return fx;
  }

  cleanup(close: () => unknown): void {
    this.closers.push(close);
  }

  async closeAll(): Promise<void> {
    try {
      for (const close of this.closers.splice(0).reverse()) await close();
    } finally {
      const emulator = this.runningEmulator;
      this.runningEmulator = undefined;
      this.runningFixture = undefined;
      await emulator?.close();
    }
  }
}

/** A new emulator (started with `options`) for each test of the enclosing `describe`. */
export function useSlackEmulator(options: EmulatorStartOptions = {}): SlackEmulatorHooks {
  const hooks = new Hooks();
  beforeEach(async () => {
    hooks.runningEmulator = await SlackEmulator.start(options);
  });
  afterEach(() => hooks.closeAll());
  return hooks;
}

/** {@link useSlackEmulator}, plus `fx`: a fixture on the bot token with `config` overriding [fn_slack] keys. */
export function useSlackFixture(options: { emulator?: EmulatorStartOptions; config?: Record<string, string> } = {}): SlackFixtureHooks {
  const hooks = new Hooks();
  beforeEach(async () => {
    hooks.runningEmulator = await SlackEmulator.start(options.emulator);
    hooks.runningFixture = await hooks.fixture(options.config);
  });
  afterEach(() => hooks.closeAll());
  return hooks;
}
