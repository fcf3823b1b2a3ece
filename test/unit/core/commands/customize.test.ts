/**
 * The customize loop with targets given by the test: how a further target (a SOAR
 * platform) plugs in, and how prompts, dry runs and failures are handled. The real
 * broker and store targets are tested through the CLI in test/integration/core.
 */
import { expect } from 'chai';
import { CUSTOMIZE_EXIT, TargetError, runCustomize, type CustomizeTarget, type Plan } from '../../../../src/core/commands/customize.js';
import type { CustomizationItem } from '../../../../src/core/commands/customizations.js';
import { builtinPlugins } from '../../../../src/functions/index.js';
import { writeConfig, type TestConfig } from '../../../support/harness.js';

/** A stand-in SOAR target: holds workflows and rules; "already has" the ones listed. */
class FakeSoar implements CustomizeTarget {
  readonly name = 'SOAR';
  applied: string[] = [];
  closed = false;
  constructor(
    private readonly existing: string[] = [],
    private readonly failOn?: string,
  ) {}
  async plan(item: CustomizationItem): Promise<Plan> {
    if (item.kind !== 'workflow' && item.kind !== 'rule') return { action: 'not-applicable', detail: '' };
    return this.existing.includes(item.name) ? { action: 'unchanged', detail: 'present' } : { action: 'create', detail: 'new' };
  }
  async apply(item: CustomizationItem): Promise<string> {
    if (item.name === this.failOn) throw new TargetError(`SOAR refused ${item.name}`, 8);
    this.applied.push(item.name);
    return `imported ${item.name}`;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

describe('runCustomize with pluggable targets', () => {
  let cfg: TestConfig;
  before(() => {
    cfg = writeConfig({ withEchoPlugin: false });
  });
  async function run(target: FakeSoar, opts: { yes?: boolean; dryRun?: boolean; answers?: boolean[] } = {}) {
    let out = '';
    const questions: string[] = [];
    const answers = [...(opts.answers ?? [])];
    const report = await runCustomize({
      configFile: cfg.file,
      builtins: builtinPlugins,
      packages: ['fn_slack'],
      yes: opts.yes ?? false,
      dryRun: opts.dryRun ?? false,
      ask: async (q) => {
        questions.push(q);
        return answers.shift() ?? false;
      },
      print: (t) => (out += t),
      targets: async () => [target],
    });
    return { report, out, questions };
  }

  it('a target that holds workflows and rules imports them; items no target holds are reported, not imported', async () => {
    const soar = new FakeSoar(['example_slack_archive_channel']);
    const { report, out } = await run(soar, { yes: true });
    expect(report.exitCode).to.equal(CUSTOMIZE_EXIT.ok);
    expect(soar.applied).to.deep.equal([
      'example_slack_add_bookmark',
      'example_slack_ask',
      'example_slack_get_conversation',
      'example_slack_post_attachment',
      'example_slack_post_message',
      'example_slack_send_direct_message',
      'example_slack_set_channel_topic',
      'example_archive_slack_channel',
      'example_post_attachment_to_slack',
      'example_post_incident_to_slack',
    ]);
    expect(soar.closed).to.equal(true);
    expect(out).to.contain('  workflow example_slack_archive_channel → SOAR: unchanged (present)\n');
    expect(out).to.contain('  rule example_post_incident_to_slack → SOAR: created (imported example_post_incident_to_slack)\n');
    expect(out).to.contain('  function slack_post_message: not imported (no configured target holds it)\n');
    expect(out).to.contain('customize: 10 created, 0 updated, 1 unchanged, 0 skipped\n');
  });

  it('asks "OK to import <kind> <name> into <target>?" for each change and applies only the yeses', async () => {
    const soar = new FakeSoar(['example_slack_archive_channel', 'example_slack_post_attachment']);
    const { questions, out } = await run(soar, { answers: [true, false] });
    expect(questions).to.deep.equal([
      'OK to import workflow example_slack_add_bookmark into SOAR?',
      'OK to import workflow example_slack_ask into SOAR?',
      'OK to import workflow example_slack_get_conversation into SOAR?',
      'OK to import workflow example_slack_post_message into SOAR?',
      'OK to import workflow example_slack_send_direct_message into SOAR?',
      'OK to import workflow example_slack_set_channel_topic into SOAR?',
      'OK to import rule example_archive_slack_channel into SOAR?',
      'OK to import rule example_post_attachment_to_slack into SOAR?',
      'OK to import rule example_post_incident_to_slack into SOAR?',
    ]);
    expect(soar.applied).to.deep.equal(['example_slack_add_bookmark']);
    expect(out).to.contain('customize: 1 created, 0 updated, 2 unchanged, 8 skipped\n');
  });

  it('--dry-run asks nothing and applies nothing', async () => {
    const soar = new FakeSoar();
    const { questions, out } = await run(soar, { dryRun: true });
    expect(questions).to.deep.equal([]);
    expect(soar.applied).to.deep.equal([]);
    expect(out).to.contain('  workflow example_slack_post_message → SOAR: would create (new)\n');
    expect(out).to.contain('would create 11, would update 0, 0 unchanged; nothing was changed\n');
  });

  it("stops at a target's failure with that target's exit code, and closes the targets", async () => {
    const soar = new FakeSoar([], 'example_slack_post_attachment');
    const { report, out } = await run(soar, { yes: true });
    expect(report.exitCode).to.equal(8);
    expect(soar.applied).to.deep.equal(['example_slack_add_bookmark', 'example_slack_archive_channel', 'example_slack_ask', 'example_slack_get_conversation']);
    expect(soar.closed).to.equal(true);
    expect(out).to.contain('  workflow example_slack_post_attachment → SOAR: failed (SOAR refused example_slack_post_attachment)\n');
    expect(out).to.contain('customize: failure (workflow example_slack_post_attachment); later items were not imported\n');
    expect(out).not.to.contain('example_post_incident_to_slack');
  });
});
