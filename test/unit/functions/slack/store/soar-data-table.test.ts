/**
 * [soar] data_table: the conversation table of a real SQLite store, mirrored to the SOAR
 * emulator's slack_conversations_db rows. The store stays the truth; SOAR failures are
 * warnings.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import type { Logger } from '../../../../../src/core/logging.js';
import { LocalPlatform } from '../../../../../src/platforms/local/local-platform.js';
import { SoarClient } from '../../../../../src/platforms/soar/soar-client.js';
import { withSoarDataTable } from '../../../../../src/functions/slack/store/soar-data-table.js';
import {
  CONVERSATIONS_TABLE,
  SqlConversationTable,
  type ConversationRow,
  type ConversationTable,
} from '../../../../../src/functions/slack/store/conversations.js';
import { SoarPlatform } from '../../../../../src/platforms/soar/soar-platform.js';
import { openStore } from '../../../../../src/core/store/index.js';
import type { Store } from '../../../../../src/core/store/store.js';
import { SoarEmulator } from '../../../../support/soar-emulator.js';

function recordingLogger(warnings: string[]): Logger {
  const log: Logger = {
    error: () => undefined,
    warn: (m: string) => warnings.push(m),
    info: () => undefined,
    debug: () => undefined,
    child: () => log,
  };
  return log;
}

const COLUMNS = [
  'slack_db_time',
  'slack_db_res_id',
  'slack_db_channel',
  'slack_db_channel_type',
  'slack_db_permalink',
  'slack_db_archived',
];

function row(resId: string, incidentId: number, channel: string): ConversationRow {
  return {
    resId,
    incidentId,
    taskId: null,
    channel,
    channelId: `C${channel.toUpperCase().replace(/\W/g, '')}`,
    channelType: 'Private',
    permalink: `https://emulated.slack.com/archives/${channel}`,
    time: new Date(1_700_000_000_000),
    archived: false,
    archivedAt: null,
  };
}

describe('SOAR data table mirror ([soar] data_table)', function () {
  let soar: SoarEmulator;
  let client: SoarClient;
  let dir: string;
  let store: Store;
  let base: ConversationTable;
  let mirrored: ConversationTable;
  let warnings: string[];

  beforeEach(async () => {
    soar = await SoarEmulator.start();
    soar.addIncident(2103);
    client = new SoarClient({
      baseUrl: soar.baseUrl,
      orgId: soar.orgId,
      apiKeyId: soar.apiKeyId,
      apiKeySecret: soar.apiKeySecret,
      retries: 0,
    });
    dir = await mkdtemp(join(tmpdir(), 'soar-table-'));
    store = await openStore(join(dir, 'worker.db'), { migrate: true, tables: [CONVERSATIONS_TABLE] });
    base = new SqlConversationTable(store.sql);
    warnings = [];
    mirrored = withSoarDataTable(base, new SoarPlatform(client, true), recordingLogger(warnings));
  });
  afterEach(async () => {
    await store.close();
    client.close();
    await soar.close();
    await rm(dir, { recursive: true, force: true });
  });

  const addTable = () =>
    soar.dataTables.set('slack_conversations_db', {
      type_name: 'slack_conversations_db',
      type_id: 8,
      fields: Object.fromEntries(COLUMNS.map((c) => [c, { name: c, input_type: 'text' }])),
    });

  it('is the plain table unless the platform is SOAR with data_table on', () => {
    expect(withSoarDataTable(base, new SoarPlatform(client, false), recordingLogger([]))).to.equal(base);
    expect(withSoarDataTable(base, new LocalPlatform(dir), recordingLogger([]))).to.equal(base);
    expect(mirrored).not.to.equal(base);
  });

  it('copies a new association, then updates the same SOAR row when archived (only columns the table has)', async () => {
    addTable();
    const { inserted } = await mirrored.insertIfAbsent(row('RES-2103', 2103, 'inc-2103'));
    expect(inserted).to.equal(true);
    expect(soar.rows).to.have.length(1);
    expect(soar.rows[0]!.cells).to.deep.equal({
      slack_db_time: { value: 1_700_000_000_000 },
      slack_db_res_id: { value: 'RES-2103' },
      slack_db_channel: { value: 'inc-2103' },
      slack_db_channel_type: { value: 'Private' },
      slack_db_permalink: { value: '<a href="https://emulated.slack.com/archives/inc-2103">Link</a>' },
      slack_db_archived: { value: false },
    });

    // A second insert for the same resId stores nothing and copies nothing.
    expect((await mirrored.insertIfAbsent(row('RES-2103', 2103, 'other'))).inserted).to.equal(false);
    expect(soar.rows).to.have.length(1);

    expect(await mirrored.markArchived('RES-2103', new Date())).to.equal(true);
    expect(soar.rows).to.have.length(1);
    expect(soar.rows[0]!.cells.slack_db_archived).to.deep.equal({ value: true });
    expect(soar.requestsTo(/row_data\/\d+$/, 'PUT')).to.have.length(1);
    expect((await base.get('RES-2103'))!.archived).to.equal(true);
    expect(warnings).to.deep.equal([]);
  });

  it('keeps the store write and warns when SOAR has no such table or fails', async () => {
    await mirrored.insertIfAbsent(row('RES-2103', 2103, 'inc-2103'));
    expect((await base.get('RES-2103'))!.channel).to.equal('inc-2103');
    expect(warnings).to.have.length(1);
    expect(warnings[0]).to.include('Could not copy RES-2103 to the SOAR data table slack_conversations_db of incident 2103');
    expect(warnings[0]).to.include('import it with `worker customize`');

    addTable();
    soar.fail({ path: /row_data$/, method: 'POST', kind: 'status', status: 500 });
    await mirrored.replace({ ...row('RES-2103', 2103, 'inc-2103-b') });
    expect(warnings).to.have.length(2);
    expect(warnings[1]).to.include('SOAR answered 500');
    await mirrored.markArchived('RES-2103', new Date()); // the next write repairs it
    expect(soar.rows).to.have.length(1);
    expect(soar.rows[0]!.cells.slack_db_channel).to.deep.equal({ value: 'inc-2103-b' });
  });
});
