import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { analyzeAuditTrail, auditTrailSize, postgresServer } from '../bench/dataset.js';
import { queryRows } from '../src/db/execute.js';
import { AuditLog } from '../src/audit/store.js';
import { auditEvent, openTestDb, type TestDb } from '../src/audit/test-db.js';

describe('the PostgreSQL server the bench uses', () => {
  it('is BENCH_PG_URL, else the server of DATABASE_URL, else the local one, shown without its password', () => {
    const local = 'postgres://postgres@127.0.0.1:5432/postgres';
    expect(postgresServer({})).toEqual({ url: local, from: 'the local default', shown: 'postgres://postgres@127.0.0.1:5432' });
    expect(postgresServer({ DATABASE_URL: 'postgres://app:s3cret@db.internal:6432/custos' })).toEqual({
      url: 'postgres://app:s3cret@db.internal:6432/custos', from: 'the server of DATABASE_URL', shown: 'postgres://app@db.internal:6432',
    });
    // PGlite's directory and other non-PostgreSQL settings are not a server.
    expect(postgresServer({ DATABASE_URL: './data/pglite' }).url).toBe(local);
    expect(postgresServer({ BENCH_PG_URL: 'postgresql://b:pw@h/postgres', DATABASE_URL: 'postgres://a@x/y' })).toMatchObject({ from: 'BENCH_PG_URL', shown: 'postgresql://b@h' });
    expect(() => postgresServer({ BENCH_PG_URL: 'not a url' })).toThrow('BENCH_PG_URL is not a URL');
    // The message never repeats the URL, which may hold a password.
    expect(() => postgresServer({ DATABASE_URL: 'postgres://u:hunter2@[bad' })).toThrow(/^DATABASE_URL is not a URL$/);
  });
});

// The bench stands in for autovacuum's ANALYZE of the audit trail on a server where autovacuum is off.
// PostgreSQL only, like the bench: analyzeAuditTrail connects to a server by URL and reads its statistics views,
// and PGlite in memory has neither; CI's second pass runs it against the machine's PostgreSQL.
describe.skipIf(!process.env.DATABASE_URL)('the bench analyzing audit_events as autovacuum would', () => {
  let testDb: TestDb;

  beforeAll(async () => {
    testDb = await openTestDb();
    // This test is the table's only analyzer, whatever the server's autovacuum setting.
    await testDb.handle.db.execute(sql`alter table audit_events set (autovacuum_enabled = false)`);
  });

  afterAll(async () => {
    await testDb?.close();
  });

  /** Appends n records and waits until the statistics collector counts them as changed since the last ANALYZE. */
  async function append(log: AuditLog, n: number, changedAfter: number): Promise<void> {
    await log.append(Array.from({ length: n }, () => auditEvent()));
    await vi.waitFor(
      async () => {
        const [row] = await queryRows(testDb.handle.db, sql`select n_mod_since_analyze::int as changed from pg_stat_user_tables where relname = 'audit_events'`);
        expect(row!.changed).toBe(changedAfter);
      },
      { timeout: 15_000, interval: 100 },
    );
  }

  it("analyzes a table never analyzed, then only once more rows changed than autovacuum's threshold", async () => {
    const url = testDb.url!;
    const log = new AuditLog(testDb.handle.db, { indexMergeDelayMs: 0 });
    try {
      await append(log, 100, 100);
      expect(await analyzeAuditTrail(url)).toBe(true);
      expect(await analyzeAuditTrail(url)).toBe(false);
      // 100 rows: due after more than threshold + scale factor × 100 changes (60 with the defaults).
      const [setting] = await queryRows(
        testDb.handle.db,
        sql`select current_setting('autovacuum_analyze_threshold')::float8 as base, current_setting('autovacuum_analyze_scale_factor')::float8 as scale`,
      );
      const allowed = Math.floor((setting!.base as number) + (setting!.scale as number) * 100);
      await append(log, allowed, allowed);
      expect(await analyzeAuditTrail(url)).toBe(false);
      await append(log, 1, allowed + 1);
      expect(await analyzeAuditTrail(url)).toBe(true);
      const [stats] = await queryRows(testDb.handle.db, sql`select n_mod_since_analyze::int as changed, last_analyze is not null as analyzed from pg_stat_user_tables where relname = 'audit_events'`);
      expect(stats).toEqual({ changed: 0, analyzed: true });
      // Analyzed with no write since, the size the run reports is the trail's exact count.
      const [count] = await queryRows(testDb.handle.db, sql`select count(*)::int as n from audit_events`);
      const size = await auditTrailSize(url);
      expect(size.records).toBe(count!.n);
      expect(size.mb).toBeGreaterThan(0);
    } finally {
      await log.close();
    }
  });
});
