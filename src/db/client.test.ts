import { sql } from 'drizzle-orm';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestDb, type TestDb } from '../audit/test-db.js';
import { createDb, type DbHandle } from './client.js';
import { queryRows } from './execute.js';

// The postgres.js client's own instrumentation; PGlite counts at its two entry points (countStatements).
describe.skipIf(!process.env.DATABASE_URL)('statements sent to PostgreSQL', () => {
  let testDb: TestDb;
  /** With the acquire gate, as the server runs; `testDb.handle` has none. */
  let gated: DbHandle;

  beforeAll(async () => {
    testDb = await openTestDb();
    gated = await createDb({ kind: 'postgres', url: testDb.url!, poolMax: 4, acquireTimeoutMs: 5_000 });
  });

  afterAll(async () => {
    await gated?.close();
    await testDb?.close();
  });

  const handles = () => [
    ['without a gate', testDb.handle],
    ['with a gate', gated],
  ] as const;

  async function sent(handle: DbHandle, run: () => Promise<unknown>): Promise<number> {
    const before = handle.stats.statements;
    await run().catch(() => undefined);
    return handle.stats.statements - before;
  }

  it('counts each statement once, on both pools, and the readiness ping of each', async () => {
    for (const [, handle] of handles()) {
      expect(await sent(handle, () => queryRows(handle.db, sql`select 1`))).toBe(1);
      expect(await sent(handle, () => queryRows(handle.reads, sql`select ${'x'}::text as v`))).toBe(1);
      // Prepared by name: the first run also describes it, still one statement.
      const named = () => handle.db._.session.prepareQuery({ sql: 'select $1::int + 1 as n', params: [41] }, undefined, 'counted', false).execute();
      expect(await sent(handle, named)).toBe(1);
      expect(await sent(handle, named)).toBe(1);
      expect(await sent(handle, () => handle.ping())).toBe(handle.reads === handle.db ? 1 : 2);
    }
  });

  it('counts a tagged-template query, and not a helper built by calling the client', async () => {
    for (const [, handle] of handles()) {
      const client = (handle.db as unknown as { $client: postgres.Sql }).$client;
      const before = handle.stats.statements;
      const table = client('audit_events');
      expect(handle.stats.statements).toBe(before);
      const rows = await client`select count(*)::int as n from ${table}`;
      expect(rows[0]).toEqual({ n: 0 });
      expect(handle.stats.statements).toBe(before + 1);
    }
  });

  it('counts a transaction as its begin, its statements and its commit or rollback', async () => {
    for (const [, handle] of handles()) {
      const committed = () =>
        handle.db.transaction(async (tx) => {
          await queryRows(tx, sql`select 1`);
          await queryRows(tx, sql`select 2`);
        });
      expect(await sent(handle, committed)).toBe(4);
      const failed = () =>
        handle.db.transaction(async (tx) => {
          await queryRows(tx, sql`select 1`);
          throw new Error('abandoned');
        });
      expect(await sent(handle, failed)).toBe(3);
      // A statement that fails inside: begin, the statement, rollback.
      expect(await sent(handle, () => handle.db.transaction((tx) => queryRows(tx, sql`select 1 / 0`)))).toBe(3);
      // A nested transaction is a savepoint: begin, savepoint, select, commit (no release is sent).
      const nested = () => handle.db.transaction((tx) => tx.transaction((inner) => queryRows(inner, sql`select 1`)));
      expect(await sent(handle, nested)).toBe(4);
      // A nested one that fails and is caught: begin, savepoint, the statement, rollback to, commit.
      const rolledBack = () => handle.db.transaction((tx) => tx.transaction((inner) => queryRows(inner, sql`select 1 / 0`)).catch(() => undefined));
      expect(await sent(handle, rolledBack)).toBe(5);
    }
  });

  it('never puts the SQL or the parameter values of a failed statement on its error', async () => {
    const secret = 'hui.chen.3911@example.com';
    for (const [, handle] of handles()) {
      const error = await queryRows(handle.db, sql`select 1 / 0 where ${secret}::text is not null`).then(
        () => null,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(Error);
      // drizzle's wrapper quotes the statement in its message (never logged); the driver's error is its cause.
      const cause = (error as { cause?: unknown }).cause as Record<string, unknown>;
      expect(cause).toMatchObject({ code: '22012' });
      for (const key of ['query', 'parameters', 'args', 'types']) expect(Object.keys(cause)).not.toContain(key);
      expect(JSON.stringify(cause)).not.toContain(secret);
      expect(JSON.stringify(cause)).not.toContain('select');
    }
  });
});
