/**
 * fn_slack's conversation table on the PostgreSQL store (the SQLite runs are in
 * test/unit/functions/slack/store/conversations.test.ts). Each store gets its own schema;
 * this run's schemas are dropped afterwards.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { PostgresStore } from '../../../src/core/store/postgres-store.js';
import { conversationConformance } from '../../support/conversation-conformance.js';

const PG_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const RUN = `conv_${process.pid}_${randomBytes(3).toString('hex')}`;
let counter = 0;

async function dropRunSchemas(): Promise<void> {
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ nspname: string }>(`SELECT nspname FROM pg_namespace WHERE nspname LIKE $1`, [`${RUN}\\_%`]);
    for (const r of rows) await client.query(`DROP SCHEMA "${r.nspname}" CASCADE`);
  } finally {
    await client.end();
  }
}

conversationConformance(
  'postgres',
  (tables) => PostgresStore.open(PG_URL, { schema: `${RUN}_${++counter}`, poolSize: 5, tables }),
  dropRunSchemas,
);
