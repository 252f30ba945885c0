import fc from 'fast-check';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgActivityReader, pgWindow, STALL_FACTOR, stallsAndCheckpoints, type PgCounters, type PgWindow } from '../bench/pg-activity.js';
import { median } from '../bench/quantile.js';

const at = (c: Partial<PgCounters>): PgCounters => ({
  checkpoints: 0, checkpointWriteMs: 0, checkpointSyncMs: 0, checkpointBuffers: 0, walBytes: 0, walFpi: 0, ...c,
});

describe('what PostgreSQL did in a soak window', () => {
  it('tells a checkpoint under way from one that ended: only an ending adds its write and sync times', () => {
    // A spread checkpoint: its buffers show in every window it writes in.
    const writing = pgWindow(at({ checkpoints: 3, checkpointBuffers: 100 }), at({ checkpoints: 3, checkpointBuffers: 900, walBytes: 3 * 1024 * 1024, walFpi: 40 }));
    expect(writing).toEqual({
      checkpointsStarted: 0, checkpointEnded: false, checkpointSyncMs: 0, checkpointWriteMs: 0, checkpointBuffers: 800, walMb: 3, walFpi: 40,
    });
    const ending = pgWindow(
      at({ checkpoints: 3, checkpointWriteMs: 1000, checkpointSyncMs: 5, checkpointBuffers: 900 }),
      at({ checkpoints: 4, checkpointWriteMs: 270_000, checkpointSyncMs: 48, checkpointBuffers: 950 }),
    );
    expect(ending).toMatchObject({ checkpointsStarted: 1, checkpointEnded: true, checkpointSyncMs: 43, checkpointWriteMs: 269_000, checkpointBuffers: 50 });
  });

  it('counts nothing where the statistics were reset meanwhile, and has no WAL figures where the server has no pg_stat_wal', () => {
    const reset = pgWindow(at({ checkpoints: 9, checkpointWriteMs: 5000, checkpointBuffers: 70, walBytes: 5e6, walFpi: 10 }), at({}));
    expect(reset).toMatchObject({ checkpointsStarted: 0, checkpointEnded: false, checkpointBuffers: 0, walMb: 0, walFpi: 0 });
    expect(pgWindow(at({ walBytes: null, walFpi: null }), at({ walBytes: null, walFpi: null }))).toMatchObject({ walMb: null, walFpi: null });
  });
});

describe('the soak windows that stand out', () => {
  const window = (t: number, p99: number, ended: boolean) => ({
    t, p99, pg: { checkpointsStarted: 0, checkpointEnded: ended, checkpointSyncMs: 0, checkpointWriteMs: ended ? 1 : 0, checkpointBuffers: 0, walMb: 1, walFpi: 0 },
  });

  it('lists exactly the windows above STALL_FACTOR × the median p99, and counts checkpoint ends among them and among all', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.double({ min: 0.1, max: 500, noNaN: true }), fc.boolean()), { minLength: 1, maxLength: 120 }), (rows) => {
        const samples = rows.map(([p99, ended], i) => window(10 * (i + 1), p99, ended));
        const result = stallsAndCheckpoints(samples);
        const m = median(samples.map((s) => s.p99));
        expect(result.medianP99).toBe(m);
        expect(result.stalls.map((s) => s.t)).toEqual(samples.filter((s) => s.p99 > STALL_FACTOR * m).map((s) => s.t));
        expect(result.stallsWithCheckpointEnd).toBe(samples.filter((s) => s.p99 > STALL_FACTOR * m && s.pg.checkpointEnded).length);
        expect(result.windowsWithCheckpointEnd).toBe(samples.filter((s) => s.pg.checkpointEnded).length);
        expect(result.windowsRead).toBe(samples.length);
      }),
    );
  });

  it('reads windows without PostgreSQL figures as stalls all the same, never as checkpoints', () => {
    const result = stallsAndCheckpoints([{ t: 10, p99: 5 }, { t: 20, p99: 6 }, { t: 30, p99: 60 }]);
    expect(result).toMatchObject({ medianP99: 6, stallsWithCheckpointEnd: 0, windowsWithCheckpointEnd: 0, windowsRead: 0 });
    expect(result.stalls).toEqual([{ t: 30, p99: 60, pg: undefined }]);
  });
});

// The reader queries the server's statistics views (pg_stat_bgwriter or pg_stat_checkpointer, pg_stat_wal), which
// PGlite in memory does not keep; CI's second pass runs this against the machine's PostgreSQL.
describe.skipIf(!process.env.DATABASE_URL)('reading PostgreSQL\'s statistics', () => {
  let sql: postgres.Sql;

  beforeAll(() => {
    sql = postgres(process.env.DATABASE_URL!, { max: 1, onnotice: () => undefined });
  });

  afterAll(async () => {
    await sql?.end({ timeout: 5 });
  });

  it('sees the WAL a write adds, and a checkpoint start and end', async () => {
    const read = pgActivityReader(sql);
    const before = await read();
    expect(before.walBytes).not.toBeNull();
    await sql`create table if not exists pg_activity_probe_logged (v text)`;
    await sql`insert into pg_activity_probe_logged select repeat('x', 100) from generate_series(1, 2000)`;
    // CHECKPOINT needs a superuser (or pg_checkpoint from PostgreSQL 15): CI's role is one; elsewhere only the WAL is checked.
    const [role] = await sql<Array<{ may: boolean }>>`select rolsuper as may from pg_roles where rolname = current_user`;
    if (role?.may) await sql`checkpoint`;
    // Backends report their WAL when idle, at most once a second, and the checkpointer its counters just after it ends: poll.
    const done = (w: PgWindow) => (w.walMb ?? 0) > 0.1 && (!role?.may || w.checkpointEnded);
    let window = pgWindow(before, await read());
    for (let i = 0; i < 150 && !done(window); i++) {
      await new Promise((r) => setTimeout(r, 100));
      window = pgWindow(before, await read());
    }
    await sql`drop table pg_activity_probe_logged`;
    expect(window.walMb).toBeGreaterThan(0.1);
    if (role?.may) expect(window).toMatchObject({ checkpointEnded: true });
    if (role?.may) expect(window.checkpointsStarted).toBeGreaterThanOrEqual(1);
  });
});
