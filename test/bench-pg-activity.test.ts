import fc from 'fast-check';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pgActivityReader, pgWindow, STALL_FACTOR, stallsAndCheckpoints, type PgCounters, type PgWindow } from '../bench/pg-activity.js';
import { median } from '../bench/quantile.js';
import { postgresProcesses } from '../bench/servers.js';

const at = (c: Partial<PgCounters>): PgCounters => ({
  checkpoints: 0, checkpointWriteMs: 0, checkpointSyncMs: 0, checkpointBuffers: 0, walBytes: 0, walFpi: 0,
  blocksHit: 0, blocksRead: 0, auditBlocksHit: 0, auditBlocksRead: 0, backendWrites: 0, ...c,
});

describe('what PostgreSQL did in a soak window', () => {
  it('tells a checkpoint under way from one that ended: only an ending adds its write and sync times', () => {
    // A spread checkpoint: its buffers show in every window it writes in.
    const writing = pgWindow(at({ checkpoints: 3, checkpointBuffers: 100 }), at({ checkpoints: 3, checkpointBuffers: 900, walBytes: 3 * 1024 * 1024, walFpi: 40 }));
    expect(writing).toEqual({
      checkpointsStarted: 0, checkpointEnded: false, checkpointSyncMs: 0, checkpointWriteMs: 0, checkpointBuffers: 800, walMb: 3, walFpi: 40,
      blocksHit: 0, blocksRead: 0, auditBlocksHit: 0, auditBlocksRead: 0, backendWrites: 0,
    });
    const ending = pgWindow(
      at({ checkpoints: 3, checkpointWriteMs: 1000, checkpointSyncMs: 5, checkpointBuffers: 900 }),
      at({ checkpoints: 4, checkpointWriteMs: 270_000, checkpointSyncMs: 48, checkpointBuffers: 950 }),
    );
    expect(ending).toMatchObject({ checkpointsStarted: 1, checkpointEnded: true, checkpointSyncMs: 43, checkpointWriteMs: 269_000, checkpointBuffers: 50 });
  });

  it('counts the pages read in and found, the audit trail\'s apart, and the backends\' own writes', () => {
    const w = pgWindow(
      at({ blocksHit: 1000, blocksRead: 10, auditBlocksHit: 400, auditBlocksRead: 2, backendWrites: 7 }),
      at({ blocksHit: 5000, blocksRead: 90, auditBlocksHit: 900, auditBlocksRead: 62, backendWrites: 19 }),
    );
    expect(w).toMatchObject({ blocksHit: 4000, blocksRead: 80, auditBlocksHit: 500, auditBlocksRead: 60, backendWrites: 12 });
    // No audit table in the database, or a server without the backends' write counter: no figure rather than a zero.
    expect(pgWindow(at({ auditBlocksHit: null, auditBlocksRead: null, backendWrites: null }), at({ auditBlocksHit: null, auditBlocksRead: null, backendWrites: null })))
      .toMatchObject({ auditBlocksHit: null, auditBlocksRead: null, backendWrites: null });
  });

  it('counts nothing where the statistics were reset meanwhile, and has no WAL figures where the server has no pg_stat_wal', () => {
    const reset = pgWindow(at({ checkpoints: 9, checkpointWriteMs: 5000, checkpointBuffers: 70, walBytes: 5e6, walFpi: 10, blocksHit: 50, blocksRead: 5, backendWrites: 3 }), at({}));
    expect(reset).toMatchObject({ checkpointsStarted: 0, checkpointEnded: false, checkpointBuffers: 0, walMb: 0, walFpi: 0, blocksHit: 0, blocksRead: 0, backendWrites: 0 });
    expect(pgWindow(at({ walBytes: null, walFpi: null }), at({ walBytes: null, walFpi: null }))).toMatchObject({ walMb: null, walFpi: null });
  });
});

describe('the soak windows that stand out', () => {
  const window = (t: number, p99: number, ended: boolean) => ({
    t, p99, pg: {
      checkpointsStarted: 0, checkpointEnded: ended, checkpointSyncMs: 0, checkpointWriteMs: ended ? 1 : 0, checkpointBuffers: 0, walMb: 1, walFpi: 0,
      blocksHit: 0, blocksRead: 0, auditBlocksHit: null, auditBlocksRead: null, backendWrites: null,
    },
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

  // The server's processes are read from /proc, so only where it runs on this machine (CI's does).
  it.skipIf(!/@(127\.0\.0\.1|localhost)([:/]|$)/.test(process.env.DATABASE_URL ?? ''))('finds its own backend among the server\'s processes, and the checkpointer apart', async () => {
    const [me] = await sql<Array<{ pid: number; db: string }>>`select pg_backend_pid() as pid, current_database() as db`;
    const processes = postgresProcesses(me!.db);
    expect(processes.get(me!.pid)).toMatchObject({ ofDatabase: true });
    expect(processes.get(me!.pid)!.cpuMs).toBeGreaterThanOrEqual(0);
    const others = [...processes.values()].filter((p) => !p.ofDatabase);
    // At least the postmaster and the checkpointer, which every running server has.
    expect(others.length).toBeGreaterThanOrEqual(2);
    // Another database's name selects none of this one's backends.
    expect(postgresProcesses(`${me!.db}_not_this_one`).get(me!.pid)).toMatchObject({ ofDatabase: false });
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
    await sql`select count(*) from pg_activity_probe_logged`;
    // Backends report their WAL and pages when idle, at most once a second, and the checkpointer its counters just after it ends: poll.
    const done = (w: PgWindow) => (w.walMb ?? 0) > 0.1 && w.blocksHit > 0 && (!role?.may || w.checkpointEnded);
    let window = pgWindow(before, await read());
    for (let i = 0; i < 150 && !done(window); i++) {
      await new Promise((r) => setTimeout(r, 100));
      window = pgWindow(before, await read());
    }
    await sql`drop table pg_activity_probe_logged`;
    expect(window.walMb).toBeGreaterThan(0.1);
    // The table was just written: reading it back finds its pages in shared_buffers.
    expect(window.blocksHit).toBeGreaterThan(0);
    expect(window.blocksRead).toBeGreaterThanOrEqual(0);
    // PostgreSQL 14–16 count backends' own writes in pg_stat_bgwriter, 16 and later in pg_stat_io: every supported server has one.
    expect(window.backendWrites).not.toBeNull();
    if (role?.may) expect(window).toMatchObject({ checkpointEnded: true });
    if (role?.may) expect(window.checkpointsStarted).toBeGreaterThanOrEqual(1);
  });
});
