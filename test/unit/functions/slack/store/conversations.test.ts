/**
 * fn_slack's conversation table on the SQLite store (file and memory); the PostgreSQL run
 * is test/integration/functions/conversations-postgres.test.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../../../../src/core/store/sqlite-store.js';
import { conversationConformance } from '../../../../support/conversation-conformance.js';

const dirs: string[] = [];
async function removeTempDirs(): Promise<void> {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
}

conversationConformance(
  'sqlite (file)',
  async (tables) => {
    const dir = await mkdtemp(join(tmpdir(), 'conversations-'));
    dirs.push(dir);
    return SqliteStore.open(join(dir, 'worker.db'), { tables });
  },
  removeTempDirs,
);
conversationConformance('sqlite (:memory:)', async (tables) => SqliteStore.open(':memory:', { tables }));
