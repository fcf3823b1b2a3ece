import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { builtinPlugins } from '../../../src/functions/index.js';
import { definePlugin, type Plugin } from '../../../src/core/runtime/plugin.js';
import { invokeLines, shellQuote } from '../../../sandbox/invocations.js';
import { SANDBOX_INCIDENT, SANDBOX_USERS } from '../../../sandbox/seed.js';
import { sandboxOptions } from '../../../sandbox/options.js';
import { parseInputPairs } from '../../../src/core/commands/invoke.js';

const OPTS = { cli: 'npx tsx src/cli.ts', configFile: '/tmp/sb dir/app.config', destination: 'fn_slack_sandbox_test' };

/** What a POSIX shell makes of a command line: its words, as the invoked program sees them. */
function shellWords(commandLine: string): string[] {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${commandLine}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

/** A plugin another team might add: a function with a required input the sandbox has no sample for. */
const newPlugin = definePlugin<Record<string, never>, undefined>({
  packageName: 'fn_newcomer',
  packageVersion: '1.0.0',
  configSection: 'fn_newcomer',
  configSchema: { type: 'object', properties: {} },
  destination: 'fn_newcomer',
  functions: [
    {
      name: 'newcomer_lookup',
      displayName: 'Lookup',
      description: 'Looks something up.',
      inputSchema: {
        type: 'object',
        required: ['incident_id', 'lookup_key', 'lookup_mode', 'strict', 'slack_ts', 'code'],
        properties: {
          incident_id: { type: 'integer' },
          lookup_key: { type: 'string' },
          lookup_mode: { type: 'string', enum: ['fast', 'full'] },
          strict: { type: 'boolean' },
          slack_ts: { type: 'string', pattern: '^[0-9]{9,10}\\.[0-9]{6}$' },
          code: { type: 'string', default: '42' },
          optional_thing: { type: 'string' },
        },
      },
      handler: async () => ({ content: {} }),
    },
  ],
  async setup() {
    return undefined;
  },
  async selftest() {
    return { state: 'success' };
  },
}) as Plugin<any, any>;

describe('sandbox invoke lines', () => {
  it('prints one line per function a caller can call, and one more when a plugin adds a function', () => {
    const names = builtinPlugins.flatMap((p) => p.functions.filter((f) => !f.internal).map((f) => f.name));
    expect(names).to.include('slack_ask');
    expect(invokeLines(builtinPlugins, OPTS).map((l) => l.functionName)).to.have.members(names);
    // slack_inbound takes Slack's envelopes from fn_slack's own queue: no caller invokes it.
    expect(invokeLines(builtinPlugins, OPTS).map((l) => l.functionName)).to.not.include('slack_inbound');

    const withNew = invokeLines([...builtinPlugins, newPlugin], OPTS);
    expect(withNew.map((l) => l.functionName)).to.have.members([...names, 'newcomer_lookup']);
  });

  it('gives slack_ask ten minutes for a person to click, a default answer for when nobody does, and waits for it that long', () => {
    const line = invokeLines(builtinPlugins, OPTS).find((l) => l.functionName === 'slack_ask')!;
    expect(line.command).to.contain(' -i slack_ask_timeout=600 -i slack_default_answer=Approve');
    // worker invoke's own 60 s would give up on the reply before the question expires.
    expect(line.command).to.contain(' --timeout 660 ');
    expect(line.needsEditing).to.equal(false);
  });

  it('creates the channel first and archives it last, so the lines run top to bottom', () => {
    const order = invokeLines([...builtinPlugins, newPlugin], OPTS).map((l) => l.functionName);
    expect(order[0]).to.equal('slack_post_message');
    expect(order[order.length - 1]).to.equal('slack_archive_channel');
  });

  it('gives slack_post_message the channel to create, the participants and a text, as words the shell passes through intact', () => {
    const line = invokeLines(builtinPlugins, OPTS).find((l) => l.functionName === 'slack_post_message')!;
    const words = shellWords(line.command.slice(OPTS.cli.length));
    expect(words.slice(0, 6)).to.deep.equal(['--config-file', OPTS.configFile, 'invoke', 'slack_post_message', '--destination', OPTS.destination]);
    const inputs = Object.fromEntries(
      words
        .slice(6)
        .filter((_, i) => i % 2 === 1)
        .map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]),
    );
    expect(inputs).to.include({
      incident_id: String(SANDBOX_INCIDENT.id),
      slack_channel: `inc-${SANDBOX_INCIDENT.id}`,
      slack_is_channel_private: 'false',
      slack_participant_emails: `${SANDBOX_USERS[0].email},${SANDBOX_USERS[1].email}`,
      // The triage card, to click on the view's page.
      slack_triage_buttons: 'true',
    });
    expect(inputs.slack_text).to.be.a('string').and.not.equal('');
    expect(line.needsEditing).to.equal(false);
  });

  it('fills a required input it has no sample for from the schema, else with a placeholder it explains', () => {
    const line = invokeLines([newPlugin], OPTS)[0]!;
    const words = shellWords(line.command.slice(OPTS.cli.length));
    expect(words).to.include.members(['lookup_mode=fast', 'strict=false', `incident_id=${SANDBOX_INCIDENT.id}`]);
    expect(line.notes.join('\n')).to.contain('<lookup_key>');
    expect(words.some((w) => w.startsWith('optional_thing='))).to.equal(false);
    expect(line.needsEditing).to.equal(true);
  });

  it('writes string inputs so that worker invoke passes them as strings, a number-like ts too once filled in', () => {
    const line = invokeLines([newPlugin], OPTS)[0]!;
    const ts = '1796623167.362000';
    const words = shellWords(line.command.slice(OPTS.cli.length).replace(/<ts>/g, ts));
    const inputs = parseInputPairs(words.filter((_, i) => words[i - 1] === '-i'));
    expect(inputs).to.deep.equal({
      incident_id: SANDBOX_INCIDENT.id,
      lookup_key: '<lookup_key>',
      lookup_mode: 'fast',
      strict: false,
      slack_ts: ts,
      code: '42',
    });
  });

  it('quotes words so that sh passes them unchanged', () => {
    const tricky = ["it's", 'a b', '$HOME', '`id`', 'x;y', 'plain-word_1.2', '', 'tab\there', 'back\\slash', '"dq"'];
    expect(shellWords(tricky.map(shellQuote).join(' '))).to.deep.equal(tricky);
  });
});

describe('sandbox options', () => {
  it('generates a new queue name per run, which the sandbox owns; a given one stays the caller\'s', () => {
    const a = sandboxOptions();
    const b = sandboxOptions();
    expect(a.destination).to.match(/^fn_slack_sandbox_[0-9a-f]{8}$/);
    expect(a.destination).to.not.equal(b.destination);
    expect(a.ownsDestination).to.equal(true);
    expect(sandboxOptions({ destination: 'my_queue' })).to.include({ destination: 'my_queue', ownsDestination: false });
  });

  it('refuses bad flags with a message naming the flag, and keeps a password out of it', () => {
    expect(() => sandboxOptions({ amqpUrl: 'http://guest:hunter2hunter2@localhost:5672' }))
      .to.throw(/--amqp-url must be an amqp:\/\/ or amqps:\/\/ URL/)
      .with.property('message')
      .that.does.not.contain('hunter2hunter2');
    expect(() => sandboxOptions({ destination: 'two words' })).to.throw(/--destination must be a queue name/);
    expect(() => sandboxOptions({ viewPort: 70000 })).to.throw(/--view-port must be a port number/);
    expect(() => sandboxOptions({ slackPort: 1.5 })).to.throw(/--slack-port must be a port number/);
  });
});
