/**
 * What the PostgreSQL server did in a window, from its cumulative statistics:
 * checkpoints (whose write and sync phases compete with every commit for the
 * disk) and the WAL written. The soak reads these before and after each
 * window, so a window whose p99 jumps can be told apart: a checkpoint that
 * ended in it, a burst of WAL, or neither (then it is custos or the machine).
 * It also reads how often a page was not in `shared_buffers` (the bench
 * database's, and the audit trail's table and indexes alone) and how many
 * dirty pages the backends had to write themselves to make room, so that a
 * cost per request that grows over a soak can be told to come from the
 * audit trail outgrowing the buffer cache, or not.
 *
 * Server-wide figures, not the bench database's alone: on the machine measured
 * here nothing else writes. Each backend adds its WAL to the statistics when
 * it goes idle, at most once a second, so a window's WAL is the WAL reported
 * in it (a second or so late), not to the millisecond. The views differ by version: PostgreSQL 17 moved
 * the checkpointer's counters from pg_stat_bgwriter to pg_stat_checkpointer;
 * pg_stat_wal exists from 14 on. A figure the server does not have is null.
 */
import type { Sql } from 'postgres';
import { median } from './quantile.js';

/** Cumulative counters as read at one moment. */
export interface PgCounters {
  /** Checkpoints started, timed and requested (PostgreSQL 17 counts a skipped timed one too). */
  checkpoints: number;
  /** Time spent writing and syncing files by the checkpoints that have ended, ms. */
  checkpointWriteMs: number;
  checkpointSyncMs: number;
  /** Buffers the checkpoints wrote. */
  checkpointBuffers: number;
  /** WAL written, bytes, and of its records the full-page images (null: no pg_stat_wal). */
  walBytes: number | null;
  walFpi: number | null;
  /** Pages the bench database's backends found in `shared_buffers` (hit) or had to read in (read: from the OS, its page cache or the disk). */
  blocksHit: number;
  blocksRead: number;
  /** The same for `audit_events`, its indexes and its TOAST (null: no audit table in this database). */
  auditBlocksHit: number | null;
  auditBlocksRead: number | null;
  /**
   * Dirty pages the backends wrote themselves to free a buffer, server-wide:
   * `pg_stat_bgwriter.buffers_backend` up to PostgreSQL 16, client backends'
   * writes in `pg_stat_io` from 17, which dropped the former (null on a
   * server with neither).
   */
  backendWrites: number | null;
}

/** What happened between two readings. */
export interface PgWindow {
  /** Checkpoints that started in the window. */
  checkpointsStarted: number;
  /**
   * Whether a checkpoint ended in the window: PostgreSQL adds a checkpoint's
   * write and sync times to its statistics when it ends (its buffers as it
   * writes them, so a spread checkpoint shows buffers in every window).
   */
  checkpointEnded: boolean;
  /** The ended checkpoints' sync phase (fsync of every file they wrote), ms. */
  checkpointSyncMs: number;
  /** The ended checkpoints' write phase, ms (spread over checkpoint_completion_target of the interval). */
  checkpointWriteMs: number;
  /** Buffers a checkpoint wrote during the window. */
  checkpointBuffers: number;
  walMb: number | null;
  walFpi: number | null;
  blocksHit: number;
  blocksRead: number;
  auditBlocksHit: number | null;
  auditBlocksRead: number | null;
  backendWrites: number | null;
}

/** Reads the counters; the query adapts to the server's version once, on the first call. */
export function pgActivityReader(sql: Sql): () => Promise<PgCounters> {
  let query: Promise<string> | null = null;
  return async () => {
    query ??= chooseQuery(sql);
    const [row] = await sql.unsafe<Array<Record<string, string | number | null>>>(await query);
    if (!row) throw new Error('PostgreSQL returned no statistics row');
    const num = (v: string | number | null | undefined) => (v === null || v === undefined ? null : Number(v));
    return {
      checkpoints: num(row.checkpoints) ?? 0,
      checkpointWriteMs: num(row.write_ms) ?? 0,
      checkpointSyncMs: num(row.sync_ms) ?? 0,
      checkpointBuffers: num(row.buffers) ?? 0,
      walBytes: num(row.wal_bytes),
      walFpi: num(row.wal_fpi),
      blocksHit: num(row.blks_hit) ?? 0,
      blocksRead: num(row.blks_read) ?? 0,
      auditBlocksHit: num(row.audit_hit),
      auditBlocksRead: num(row.audit_read),
      backendWrites: num(row.backend_writes),
    };
  };
}

async function chooseQuery(sql: Sql): Promise<string> {
  const [v] = await sql<Array<{ checkpointer: boolean; wal: boolean; backend: boolean; io: boolean }>>`
    select to_regclass('pg_catalog.pg_stat_checkpointer') is not null as checkpointer,
           to_regclass('pg_catalog.pg_stat_wal') is not null as wal,
           exists (select 1 from pg_attribute where attrelid = 'pg_catalog.pg_stat_bgwriter'::regclass and attname = 'buffers_backend') as backend,
           to_regclass('pg_catalog.pg_stat_io') is not null as io`;
  const checkpointer = v?.checkpointer
    ? `select num_timed + num_requested as checkpoints, write_time as write_ms, sync_time as sync_ms, buffers_written as buffers from pg_stat_checkpointer`
    : `select checkpoints_timed + checkpoints_req as checkpoints, checkpoint_write_time as write_ms, checkpoint_sync_time as sync_ms, buffers_checkpoint as buffers from pg_stat_bgwriter`;
  const wal = v?.wal ? `select wal_bytes::float8 as wal_bytes, wal_fpi from pg_stat_wal` : `select null::float8 as wal_bytes, null::bigint as wal_fpi`;
  const backendWrites = v?.backend
    ? `select buffers_backend as backend_writes from pg_stat_bgwriter`
    : v?.io
      ? `select coalesce(sum(writes), 0) as backend_writes from pg_stat_io where backend_type = 'client backend'`
      : `select null::bigint as backend_writes`;
  // pg_statio_user_tables counts a relation's heap, index and TOAST pages apart; a column is null where the part is absent.
  const audit = `select sum(coalesce(heap_blks_hit, 0) + coalesce(idx_blks_hit, 0) + coalesce(toast_blks_hit, 0) + coalesce(tidx_blks_hit, 0)) as audit_hit,
      sum(coalesce(heap_blks_read, 0) + coalesce(idx_blks_read, 0) + coalesce(toast_blks_read, 0) + coalesce(tidx_blks_read, 0)) as audit_read
    from pg_statio_user_tables where relid = to_regclass('audit_events')`;
  const database = `select blks_hit, blks_read from pg_stat_database where datname = current_database()`;
  return `select c.checkpoints, c.write_ms, c.sync_ms, c.buffers, w.wal_bytes, w.wal_fpi, d.blks_hit, d.blks_read, a.audit_hit, a.audit_read, b.backend_writes
    from (${checkpointer}) as c, (${wal}) as w, (${database}) as d, (${audit}) as a, (${backendWrites}) as b`;
}

/** The difference of two readings; a counter that went back (statistics reset) counts as nothing done. */
export function pgWindow(before: PgCounters, after: PgCounters): PgWindow {
  const delta = (a: number, b: number) => Math.max(0, b - a);
  const nullable = (a: number | null, b: number | null) => (a === null || b === null ? null : delta(a, b));
  const writeMs = delta(before.checkpointWriteMs, after.checkpointWriteMs);
  const syncMs = delta(before.checkpointSyncMs, after.checkpointSyncMs);
  const buffers = delta(before.checkpointBuffers, after.checkpointBuffers);
  const walBytes = nullable(before.walBytes, after.walBytes);
  return {
    checkpointsStarted: delta(before.checkpoints, after.checkpoints),
    checkpointEnded: writeMs > 0 || syncMs > 0,
    checkpointSyncMs: syncMs,
    checkpointWriteMs: writeMs,
    checkpointBuffers: buffers,
    walMb: walBytes === null ? null : walBytes / 1024 / 1024,
    walFpi: nullable(before.walFpi, after.walFpi),
    blocksHit: delta(before.blocksHit, after.blocksHit),
    blocksRead: delta(before.blocksRead, after.blocksRead),
    auditBlocksHit: nullable(before.auditBlocksHit, after.auditBlocksHit),
    auditBlocksRead: nullable(before.auditBlocksRead, after.auditBlocksRead),
    backendWrites: nullable(before.backendWrites, after.backendWrites),
  };
}

/** Windows whose p99 is this many times the soak's median p99 are listed as stalls. */
export const STALL_FACTOR = 3;

export interface Stall {
  t: number;
  p99: number;
  pg: PgWindow | undefined;
}

/**
 * The windows whose client p99 stands out (STALL_FACTOR × the median of all
 * windows) and how many of them, and of all windows, had a checkpoint end in
 * them: if checkpoints cause the stalls, the share among stalls is far above
 * the share among all windows.
 */
export function stallsAndCheckpoints(samples: Array<{ t: number; p99: number; pg?: PgWindow }>): {
  medianP99: number;
  stalls: Stall[];
  stallsWithCheckpointEnd: number;
  windowsWithCheckpointEnd: number;
  windowsRead: number;
} {
  const medianP99 = median(samples.map((s) => s.p99).filter(Number.isFinite));
  const stalls = samples.filter((s) => s.p99 > STALL_FACTOR * medianP99).map((s) => ({ t: s.t, p99: s.p99, pg: s.pg }));
  const read = samples.filter((s) => s.pg !== undefined);
  return {
    medianP99,
    stalls,
    stallsWithCheckpointEnd: stalls.filter((s) => s.pg?.checkpointEnded).length,
    windowsWithCheckpointEnd: read.filter((s) => s.pg!.checkpointEnded).length,
    windowsRead: read.length,
  };
}
