import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type Db, type DbHandle } from '../db/client.js';
import { queryRows } from '../db/execute.js';
import { AuditLog } from './store.js';
import { auditEvent, openTestDb, type TestDb } from './test-db.js';

/**
 * A fresh database of its own: the trail must be as a new deployment's (or a
 * freshly seeded benchmark's) is, empty and analyzed while empty.
 */
let testDb: TestDb;
/** One connection: the appender's statements and the statistics read here run on it, so the counters are its own. */
let one: DbHandle;

beforeAll(async () => {
  testDb = await openTestDb();
  one = testDb.url ? await createDb({ kind: 'postgres', url: testDb.url, poolMax: 1 }) : testDb.handle;
});

afterAll(async () => {
  if (one && one !== testDb?.handle) await one.close();
  await testDb?.close();
});

/** Sequential scans of audit_events so far, this connection's own included (flushed to the shared counters first). */
async function seqScans(db: Db): Promise<number> {
  await queryRows(db, sql`select pg_stat_force_next_flush()`);
  const [row] = await queryRows(db, sql`select seq_scan::int as n from pg_stat_user_tables where relname = 'audit_events'`);
  return row!.n as number;
}

describe('an append, whatever the statistics of the trail say', () => {
  it('finds the head it links to through the primary key, never by reading the whole trail', async () => {
    // Statistics of an empty trail: PostgreSQL then prices a sequential scan of the few pages the first records
    // fill below an index probe, and a plan it caches for the append's statement would keep scanning every record
    // as the trail grows, until something analyzes it again (nothing does where autovacuum is off).
    await queryRows(one.db, sql`analyze audit_events`);
    const log = new AuditLog(one.db, { indexMergeDelayMs: 0 });
    try {
      await log.append([auditEvent()]);
      const before = await seqScans(one.db);
      // Past the five executions PostgreSQL plans afresh before it settles on a cached plan.
      for (let i = 0; i < 12; i++) await log.append([auditEvent({ recordIds: [`c-${i}`] })]);
      expect(log.stats()).toMatchObject({ appended: 13, batches: 13, locked: 1, failures: 0 });
      expect(await seqScans(one.db)).toBe(before);
    } finally {
      await log.close();
    }
  });

  it('reads the head through the primary key when it takes the chain lock', async () => {
    const before = await seqScans(one.db);
    // A log's first flush takes the lock and reads the head (so does any flush after another writer moved the chain).
    for (let i = 0; i < 8; i++) {
      const log = new AuditLog(one.db, { indexMergeDelayMs: 0 });
      try {
        await log.append([auditEvent({ recordIds: [`d-${i}`] })]);
        expect(log.stats()).toMatchObject({ appended: 1, locked: 1, failures: 0 });
      } finally {
        await log.close();
      }
    }
    expect(await seqScans(one.db)).toBe(before);
  });

  it('appends as the service role, both the locked way and the one-statement way', async () => {
    // What production connects as: a member of custos_app, which may only SELECT and INSERT on the trail.
    await queryRows(one.db, sql`set role custos_app`);
    try {
      const log = new AuditLog(one.db, { indexMergeDelayMs: 0 });
      try {
        for (let i = 0; i < 3; i++) await log.append([auditEvent({ recordIds: [`e-${i}`] })]);
        expect(log.stats()).toMatchObject({ appended: 3, batches: 3, locked: 1, failures: 0 });
      } finally {
        await log.close();
      }
    } finally {
      await queryRows(one.db, sql`reset role`);
    }
  });

  it("lets the service role run the head check with its own rights (it reads the trail), and nobody else", async () => {
    const rows = await queryRows(
      one.db,
      sql`select has_function_privilege('custos_app', 'audit_chain_head_is(bigint, bytea)', 'execute') as app,
                 has_function_privilege('public', 'audit_chain_head_is(bigint, bytea)', 'execute') as everyone,
                 p.prosecdef as definer, p.provolatile as volatility, p.proconfig as config
            from pg_proc p where p.proname = 'audit_chain_head_is'`,
    );
    expect(rows).toEqual([{ app: true, everyone: false, definer: false, volatility: 's', config: ['enable_seqscan=off', 'search_path=pg_catalog, pg_temp'] }]);
  });
});
