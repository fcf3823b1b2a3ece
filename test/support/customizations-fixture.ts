/**
 * Writes a customizations folder for test/support/customize-plugin.ts with unique
 * queue and function names, so `worker customize` tests do not collide on the shared broker.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT, uniqueName } from './harness.js';

export const CUSTOMIZE_PLUGIN = path.join(REPO_ROOT, 'test', 'support', 'customize-plugin.ts');

export const CUSTOM_PACKAGE = 'fn_custom';

export interface CustomizationNames {
  dir: string;
  destination: string;
  functionName: string;
  workflow: string;
  rule: string;
}

/** Writes a customizations folder with unique names: one destination, the data table, one function, a workflow and a rule. */
export function writeCustomizations(dir: string): CustomizationNames {
  const id = uniqueName('cz');
  const names = { dir, destination: `${id}_q`, functionName: `${id}_echo`, workflow: `example_${id}_wf`, rule: `example_${id}_rule` };
  const write = (folder: string, name: string, body: unknown) => {
    fs.mkdirSync(path.join(dir, folder), { recursive: true });
    fs.writeFileSync(path.join(dir, folder, `${name}.json`), `${JSON.stringify(body, null, 2)}\n`);
  };
  write('message_destinations', names.destination, {
    programmatic_name: names.destination,
    name: names.destination,
    destination_type: 0,
    expect_ack: true,
    description: 'test destination',
  });
  fs.mkdirSync(path.join(dir, 'data_tables'), { recursive: true });
  fs.copyFileSync(
    path.join(REPO_ROOT, 'customizations', 'fn_slack', 'data_tables', 'slack_conversations_db.json'),
    path.join(dir, 'data_tables', 'slack_conversations_db.json'),
  );
  write('functions', names.functionName, {
    name: names.functionName,
    display_name: 'Test: echo',
    description: 'Echoes its text',
    destination: names.destination,
    input_schema: {
      type: 'object',
      additionalProperties: false,
      required: ['text'],
      properties: {
        text: { type: 'string', description: 'what to echo' },
        times: { type: 'integer', minimum: 1, description: 'how often' },
      },
    },
  });
  write('workflows', names.workflow, {
    programmatic_name: names.workflow,
    name: 'Example: echo',
    object_type: 'incident',
    description: 'calls the echo function',
    functions: [{ name: names.functionName, pre_processing_script: 'inputs.text = incident.name' }],
  });
  write('rules', names.rule, {
    programmatic_name: names.rule,
    name: 'Example: echo rule',
    object_type: 'incident',
    description: 'runs the echo workflow',
    workflows: [names.workflow],
    functions: [names.functionName],
  });
  return names;
}

