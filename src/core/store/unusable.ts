/**
 * Tells the worker when its store became unusable for good (a {@link StoreUnusableError}
 * from any call: the runner's ledger calls, a plugin's table calls, the readiness and
 * periodic checks), so it stops instead of handing every invocation back forever.
 * The error still reaches the caller unchanged: the invocation is handed back.
 */
import { isStoreUnusable, type StoreUnusableError } from '../runtime/errors.js';
import type { DefinitionTable, InvocationLedger, SqlExecutor, Store } from './store.js';

type AnyFn = (...args: any[]) => Promise<unknown>;

// Every method by name (a Record over the interface's keys, so a method added to an
// interface must be added here): tables may be class instances, whose methods are not
// own properties.
const LEDGER_METHODS: Record<keyof InvocationLedger, true> = {
  begin: true,
  finish: true,
  release: true,
  markReplied: true,
  replyFailed: true,
  abandonReply: true,
  recordStep: true,
  get: true,
  prune: true,
};
const DEFINITION_METHODS: Record<keyof DefinitionTable, true> = { list: true, get: true, upsert: true };
const SQL_METHODS: Record<Exclude<keyof SqlExecutor, 'dialect'>, true> = { query: true, execute: true };

function watched<T extends object>(target: T, methods: Record<keyof T, true>, report: (err: unknown) => never): T {
  const out: Record<string, AnyFn> = {};
  for (const key of Object.keys(methods)) {
    const fn = (target as Record<string, AnyFn>)[key]!;
    out[key] = (...args: unknown[]) => fn.apply(target, args).catch(report);
  }
  return out as T;
}

/** `store`, with every call's StoreUnusableError also given to `onUnusable`. */
export function reportUnusable(store: Store, onUnusable: (err: StoreUnusableError) => void): Store {
  const report = (err: unknown): never => {
    if (isStoreUnusable(err)) onUnusable(err);
    throw err;
  };
  return {
    get kind() {
      return store.kind;
    },
    get location() {
      return store.location;
    },
    get created() {
      return store.created;
    },
    ledger: watched(store.ledger, LEDGER_METHODS, report),
    definitions: watched(store.definitions, DEFINITION_METHODS, report),
    sql: { ...watched<Omit<SqlExecutor, 'dialect'>>(store.sql, SQL_METHODS, report), dialect: store.sql.dialect },
    migrate: () => store.migrate().catch(report),
    schemaStatus: () => store.schemaStatus().catch(report),
    checkWritable: () => store.checkWritable().catch(report),
    withLock: (key, fn) => store.withLock(key, fn).catch(report),
    close: () => store.close(),
  };
}
