import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { AcquireTimeoutError } from '../src/db/acquire-gate.js';
import { APPLICATION_NAME, READS_APPLICATION_NAME, type Db } from '../src/db/client.js';
import { poolOf } from '../bench/servers.js';
import { readsPool } from '../src/db/pool-split.js';
import { queryRows } from '../src/db/execute.js';
import { databaseUnavailable } from '../src/server/format-error.js';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

const REQUEST_TIMEOUT_MS = 20_000;
const ACQUIRE_TIMEOUT_MS = 500;
/** Advisory lock key the test holds from its own session to block the app's statements (not the chain or migration lock). */
const BLOCKER_KEY = 0x706f6f6c; // "pool"

describe('DB_ACQUIRE_TIMEOUT_MS', () => {
  const url = 'postgres://postgres@127.0.0.1:5432/custos';

  it('defaults to 2 s, or half the request deadline when that is shorter', () => {
    const acquire = (env: Record<string, string>) => {
      const db = loadConfig({ DATABASE_URL: url, ...env }).database;
      return db.kind === 'postgres' ? db.acquireTimeoutMs : undefined;
    };
    expect(acquire({})).toBe(2_000);
    expect(acquire({ REQUEST_TIMEOUT_MS: '1000' })).toBe(500);
    expect(acquire({ DB_ACQUIRE_TIMEOUT_MS: '750' })).toBe(750);
  });

  it('must be below REQUEST_TIMEOUT_MS, naming the key', () => {
    expect(() => loadConfig({ DATABASE_URL: url, DB_ACQUIRE_TIMEOUT_MS: '15000' })).toThrow(/DB_ACQUIRE_TIMEOUT_MS: must be below REQUEST_TIMEOUT_MS/);
    expect(() => loadConfig({ DATABASE_URL: url, DB_ACQUIRE_TIMEOUT_MS: 'soon' })).toThrow(/DB_ACQUIRE_TIMEOUT_MS/);
  });

  it('is answered as a database outage (SERVICE_UNAVAILABLE) when it expires, also behind driver and Apollo wrappers', () => {
    const error = new AcquireTimeoutError(500);
    expect(databaseUnavailable(error)).toBe(true);
    expect(databaseUnavailable({ originalError: new Error('query failed', { cause: error }) })).toBe(true);
  });
});

describe('DB_POOL_MAX between policed reads and the rest', () => {
  it('gives policed reads all but a quarter, leaves the rest at least one, and never more than DB_POOL_MAX in all', () => {
    expect(readsPool(1)).toBeNull();
    expect(readsPool(2)).toEqual({ reads: 1, rest: 1 });
    expect(readsPool(4)).toEqual({ reads: 3, rest: 1 });
    expect(readsPool(10)).toEqual({ reads: 8, rest: 2 });
    for (let max = 2; max <= 200; max++) {
      const split = readsPool(max)!;
      expect(split.reads + split.rest).toBe(max);
      expect(split.reads).toBeGreaterThanOrEqual(split.rest);
      expect(split.rest).toBeGreaterThanOrEqual(1);
    }
  });
});

// PGlite has one connection and no pool to exhaust: the gate is a PostgreSQL concern.
describe.skipIf(!process.env.DATABASE_URL)('a saturated pool (PostgreSQL, DB_POOL_MAX=2)', () => {
  let server: TestServer;
  let blocker: postgres.Sql;
  const query = '{ customers(first: 2) { edges { node { id name } } } }';

  beforeAll(async () => {
    server = await startTestServer({
      customers: 10,
      env: { DB_POOL_MAX: '2', DB_ACQUIRE_TIMEOUT_MS: String(ACQUIRE_TIMEOUT_MS), REQUEST_TIMEOUT_MS: String(REQUEST_TIMEOUT_MS) },
    });
    const db = server.config.database;
    if (db.kind !== 'postgres') throw new Error('expected PostgreSQL');
    blocker = postgres(db.url, { max: 1, onnotice: () => undefined });
  });
  afterAll(async () => {
    await blocker?.end();
    await server?.stop();
  });

  /** Asks as a sales manager; returns the body and how long the answer took. */
  async function ask() {
    const started = Date.now();
    const res = await gql(server, 'u-mgr-1', query);
    return { ...res, ms: Date.now() - started };
  }

  /** Waits (bounded) until the gate counts `n` slots in use. */
  async function untilInUse(n: number) {
    for (let i = 0; i < 200 && server.running.db.poolStats().inUse !== n; i++) await new Promise((r) => setTimeout(r, 25));
    expect(server.running.db.poolStats().inUse).toBe(n);
  }

  async function expectServedAgain() {
    const again = await ask();
    expect(again.json.errors).toBeUndefined();
    expect(again.json.data.customers.edges).toHaveLength(2);
    await untilInUse(0);
  }

  it('answers SERVICE_UNAVAILABLE well before the request deadline while two statements hold both connections, then recovers', async () => {
    // The test's own session holds the lock, so the app's two statements block inside PostgreSQL, holding their connections.
    await blocker`select pg_advisory_lock(${BLOCKER_KEY})`;
    const db = server.running.db.db;
    // drizzle's queries are lazy: awaiting inside an async function sends them now.
    const stuck = [1, 2].map(async () => {
      await db.execute(sql`select pg_advisory_xact_lock(${BLOCKER_KEY})`);
    });
    try {
      await untilInUse(2);
      const res = await ask();
      expect(res.json.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      expect(res.json.data ?? null).toBeNull();
      expect(res.text).not.toMatch(/select|pg_advisory|u-mgr-1/i);
      expect(res.ms).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
      expect(server.running.db.poolStats().timeouts).toBeGreaterThanOrEqual(1);
    } finally {
      await blocker`select pg_advisory_unlock(${BLOCKER_KEY})`;
      await Promise.all(stuck);
    }
    await expectServedAgain();
  });

  it('counts an open transaction as a held connection for its whole duration', async () => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const db = server.running.db.db;
    const open = [1, 2].map(() =>
      db.transaction(async (tx) => {
        await tx.execute(sql`select 1`);
        await released;
      }),
    );
    try {
      await untilInUse(2);
      const res = await ask();
      expect(res.json.errors?.[0]?.extensions?.code).toBe('SERVICE_UNAVAILABLE');
      expect(res.ms).toBeLessThan(REQUEST_TIMEOUT_MS / 2);
      const ready = await fetch(server.url.replace('/graphql', '/readyz'));
      expect(ready.status).toBe(503);
    } finally {
      release();
      await Promise.all(open);
    }
    await expectServedAgain();
    expect((await fetch(server.url.replace('/graphql', '/readyz'))).status).toBe(200);
  });

  it('reports pool use and refused acquires in /metrics, without labels', async () => {
    const text = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
    const timeouts = /^custos_db_acquire_timeouts_total (\d+)$/m.exec(text);
    expect(Number(timeouts?.[1])).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^custos_db_pool_in_use \d+$/m);
    expect(text).toMatch(/^custos_db_pool_waiting 0$/m);
  });

  it('runs policed reads on their own connection with generic plans, planned once, their LIMIT a literal; the rest plans as PostgreSQL chooses', async () => {
    const setting = async (db: Db) => (await queryRows(db, sql`show plan_cache_mode`))[0]?.plan_cache_mode;
    expect(await setting(server.running.db.reads)).toBe('force_generic_plan');
    expect(await setting(server.running.db.db)).toBe('auto');
    // Each pool says which it is to PostgreSQL (pg_stat_activity), for operators and the bench's split of its CPU.
    const name = async (db: Db) => (await queryRows(db, sql`select application_name from pg_stat_activity where pid = pg_backend_pid()`))[0]?.application_name;
    expect(await name(server.running.db.reads)).toBe(READS_APPLICATION_NAME);
    expect(await name(server.running.db.db)).toBe(APPLICATION_NAME);
    expect(poolOf(READS_APPLICATION_NAME)).toBe('reads');
    expect(poolOf(APPLICATION_NAME)).toBe('other');
    // DB_POOL_MAX=2: one connection for reads, so every policed read below was prepared on the one asked.
    for (let i = 0; i < 7; i++) expect((await ask()).json.errors).toBeUndefined();
    const prepared = await queryRows(
      server.running.db.reads,
      sql`select statement, generic_plans, custom_plans from pg_prepared_statements where statement like '%FROM "customers"%'`,
    );
    const page = prepared.filter((p) => /\bLIMIT\b/.test(String(p.statement)));
    expect(page.length).toBeGreaterThan(0);
    for (const p of page) {
      expect(p.statement).toMatch(/\bLIMIT 3\b/);
      expect(p.statement).not.toMatch(/\bLIMIT \$/);
      expect(Number(p.custom_plans)).toBe(0);
      expect(Number(p.generic_plans)).toBeGreaterThanOrEqual(7);
    }
  });
});
