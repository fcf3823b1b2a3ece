import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CustomizationError, KIND_ORDER, loadCustomizations } from '../../../../src/core/commands/customizations.js';
import type { Plugin } from '../../../../src/core/runtime/plugin.js';
import { slackPlugin } from '../../../../src/functions/slack/index.js';

describe('customizations loader', () => {
  describe("fn_slack's packaged definitions", () => {
    const pkg = loadCustomizations(slackPlugin);
    const of = (kind: string) => pkg.items.filter((i) => i.kind === kind);

    it('are read in import order: destinations, data tables, functions, workflows, rules', () => {
      const kinds = pkg.items.map((i) => i.kind);
      expect(kinds).to.deep.equal([...kinds].sort((a, b) => KIND_ORDER.indexOf(a) - KIND_ORDER.indexOf(b)));
      expect(of('message_destination').map((i) => i.name)).to.deep.equal(['fn_slack']);
      expect(of('data_table').map((i) => i.name)).to.deep.equal(['slack_conversations_db']);
      expect(of('function').map((i) => i.name)).to.deep.equal([
        'slack_add_bookmark',
        'slack_add_reaction',
        'slack_archive_channel',
        'slack_ask',
        'slack_get_conversation',
        'slack_invite_users',
        'slack_lookup_user',
        'slack_pin_message',
        'slack_post_attachment',
        'slack_post_message',
        'slack_remove_users',
        'slack_rename_channel',
        'slack_send_direct_message',
        'slack_set_channel_topic',
        'slack_update_message',
      ]);
      expect(of('workflow')).to.have.length(8);
      expect(of('rule')).to.have.length(3);
    });

    it('the message destination has exactly the SOAR shape', () => {
      const d = of('message_destination')[0]!.definition as unknown as Record<string, unknown>;
      expect(Object.keys(d).sort()).to.deep.equal(['description', 'destination_type', 'expect_ack', 'name', 'programmatic_name']);
      expect(d).to.include({ programmatic_name: 'fn_slack', name: 'fn_slack', destination_type: 0, expect_ack: true });
    });

    it('the data table covers the columns of slack_conversations_db', () => {
      const t = of('data_table')[0]!.definition as unknown as { type_name: string; display_name: string; fields: { name: string; input_type: string; required: boolean }[] };
      expect(t.display_name).to.equal('Slack Conversations DB');
      expect(t.fields.map((f) => [f.name, f.input_type])).to.deep.equal([
        ['slack_db_res_id', 'text'],
        ['slack_db_channel', 'text'],
        ['slack_db_channel_id', 'text'],
        ['slack_db_channel_type', 'select'],
        ['slack_db_permalink', 'text'],
        ['slack_db_time', 'datetimepicker'],
        ['slack_db_archived', 'boolean'],
        ['slack_db_archived_time', 'datetimepicker'],
      ]);
      expect(t.fields.find((f) => f.name === 'slack_db_res_id')!.required).to.equal(true);
    });

    it('function input schemas are the very ones the runner validates with', () => {
      for (const item of of('function')) {
        const fn = slackPlugin.functions.find((f) => f.name === item.name)!;
        expect((item.definition as { input_schema: unknown }).input_schema).to.deep.equal(fn.inputSchema);
        expect(item.definition).to.include({ destination: 'fn_slack', display_name: fn.displayName });
      }
    });

    it('each workflow calls one fn_slack function with a pre-process script; each rule runs workflows that exist', () => {
      const workflows = of('workflow').map((i) => i.definition as { programmatic_name: string; functions: { name: string; pre_processing_script?: string }[] });
      expect(workflows.map((w) => w.functions[0]!.name).sort()).to.deep.equal([
        'slack_add_bookmark',
        'slack_archive_channel',
        'slack_ask',
        'slack_get_conversation',
        'slack_post_attachment',
        'slack_post_message',
        'slack_send_direct_message',
        'slack_set_channel_topic',
      ]);
      const post = workflows.find((w) => w.functions[0]!.name === 'slack_post_message')!;
      // The pre-process script builds an fn_slack container.
      expect(post.functions[0]!.pre_processing_script).to.contain('"Type of data": "Incident"');
      for (const rule of of('rule')) {
        const r = rule.definition as { workflows: string[]; functions: string[] };
        for (const w of r.workflows) expect(workflows.map((x) => x.programmatic_name)).to.include(w);
      }
    });
  });

  describe('errors name the file and what to fix', () => {
    let dir: string;
    let plugin: Plugin<any, any>;
    const file = (...p: string[]) => path.join(dir, ...p);
    const edit = (rel: string, change: (body: Record<string, any>) => void) => {
      const body = JSON.parse(fs.readFileSync(file(rel), 'utf8')) as Record<string, any>;
      change(body);
      fs.writeFileSync(file(rel), JSON.stringify(body));
    };
    const loadError = (): CustomizationError => {
      try {
        loadCustomizations(plugin);
      } catch (err) {
        expect(err).to.be.instanceOf(CustomizationError);
        return err as CustomizationError;
      }
      return expect.fail('expected a CustomizationError') as never;
    };

    beforeEach(() => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'customizations-'));
      fs.cpSync(slackPlugin.customizationsDir!, dir, { recursive: true });
      plugin = { ...slackPlugin, customizationsDir: dir };
      expect(loadCustomizations(plugin).items).to.have.length(28);
    });
    afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

    it('a file that is not JSON', () => {
      fs.writeFileSync(file('rules', 'example_archive_slack_channel.json'), '{"programmatic_name": ');
      expect(loadError().message).to.match(new RegExp(`^${file('rules', 'example_archive_slack_channel.json')}: not readable JSON: `));
    });

    it('a missing or mistyped field', () => {
      edit('message_destinations/fn_slack.json', (b) => {
        delete b.expect_ack;
        b.destination_type = 'queue';
      });
      const message = loadError().message;
      expect(message).to.contain(`${file('message_destinations', 'fn_slack.json')}: not a valid message destination definition:`);
      expect(message).to.contain('expect_ack: is required');
      expect(message).to.contain('destination_type: must be one of 0, 1');
    });

    it('a name that differs from the file name', () => {
      edit('workflows/example_slack_post_message.json', (b) => (b.programmatic_name = 'example_other'));
      expect(loadError().message).to.contain('programmatic_name is "example_other" but the file is named example_slack_post_message.json');
    });

    it('a workflow using a function the package does not ship', () => {
      edit('workflows/example_slack_post_message.json', (b) => (b.functions[0].name = 'slack_nope'));
      expect(loadError().message).to.equal(
        `${file('workflows', 'example_slack_post_message.json')}: uses function slack_nope, which fn_slack does not ship`,
      );
    });

    it('a rule running a workflow that has no file', () => {
      edit('rules/example_post_incident_to_slack.json', (b) => (b.workflows = ['example_missing']));
      expect(loadError().message).to.contain('runs workflow example_missing, which has no file in workflows/');
    });

    it('a function file whose input schema differs from the one the plugin validates with', () => {
      edit('functions/slack_post_message.json', (b) => (b.input_schema.required = ['incident_id']));
      expect(loadError().message).to.contain(`${file('functions', 'slack_post_message.json')}: input_schema differs from the one fn_slack validates slack_post_message with`);
    });

    it('a function file naming a destination with no file', () => {
      edit('functions/slack_post_message.json', (b) => (b.destination = 'fn_other'));
      expect(loadError().message).to.contain('destination "fn_other" has no file in message_destinations/');
    });

    it('a plugin function without a file, and a file without a function', () => {
      for (const f of ['functions/slack_archive_channel.json', 'workflows/example_slack_archive_channel.json', 'rules/example_archive_slack_channel.json']) {
        fs.rmSync(file(f));
      }
      expect(loadError().message).to.contain('function(s) slack_archive_channel have no file in functions/');
      plugin = { ...plugin, functions: slackPlugin.functions.filter((f) => f.name !== 'slack_post_message') };
      fs.cpSync(path.join(slackPlugin.customizationsDir!, 'functions'), file('functions'), { recursive: true });
      expect(loadError().message).to.contain('fn_slack has no function slack_post_message; remove the file or add the function to the plugin');
    });

    it('a customizations folder that does not exist', () => {
      plugin = { ...plugin, customizationsDir: file('nope') };
      expect(loadError().message).to.equal(`fn_slack: its customizations folder ${file('nope')} does not exist`);
    });
  });

  it('a plugin without a customizations folder gets its destination and functions from its definition', () => {
    const { customizationsDir: _ignored, ...bare } = slackPlugin;
    const pkg = loadCustomizations({ ...bare, packageName: 'fn_bare', destination: 'bare_q' });
    expect(pkg.dir).to.equal(undefined);
    expect(pkg.items.map((i) => `${i.kind}:${i.name}`)).to.deep.equal([
      'message_destination:bare_q',
      'function:slack_post_message',
      'function:slack_post_attachment',
      'function:slack_archive_channel',
      'function:slack_update_message',
      'function:slack_set_channel_topic',
      'function:slack_rename_channel',
      'function:slack_invite_users',
      'function:slack_remove_users',
      'function:slack_pin_message',
      'function:slack_add_reaction',
      'function:slack_add_bookmark',
      'function:slack_send_direct_message',
      'function:slack_lookup_user',
      'function:slack_get_conversation',
      'function:slack_ask',
    ]);
    const fn = pkg.items[1]!.definition as { input_schema: unknown; destination: string };
    expect(fn.input_schema).to.equal(slackPlugin.functions[0]!.inputSchema);
    expect(fn.destination).to.equal('bare_q');
  });
});
