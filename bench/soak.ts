/**
 * Soak: one server (full, or off or the floor to compare) alone at a fixed request rate, in back-to-back 10 s
 * windows, sampling RSS and p99 after each, then a linear fit of RSS over time
 * to tell a leak from a plateau; with the server's GC log (bench/gc-watch.ts),
 * the same of the heap each major collection leaves, which only live objects
 * move.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { profileShift, profileWork, readProfile, shiftSummary, type ProfileShift } from './cpuprofile.js';
import { CODE_SPACES, gcWindow, oldGenerationGrowth, spacesTotalMb, YOUNG_SPACES, type GcBatch, type GcWindow, type MemorySnapshot } from './gc-log.js';
import type { LoadResult } from './load-worker.js';
import type { OtlpSink, SpanTimings } from './otlp-sink.js';
import { pgWindow, stallsAndCheckpoints, STALL_FACTOR, type PgCounters, type PgWindow } from './pg-activity.js';
import { median } from './quantile.js';
import { cpuMs, readCounters, rssMb, type LoopDelay, type LoadWorker, type MachineCpu, type PostgresProcess, type ServerHandle, type Variant } from './servers.js';

export interface SoakSample {
  t: number;
  /** Requests answered in the window. */
  requests: number;
  rps: number;
  p99: number;
  errors: number;
  rssMb: number;
  cpuMsPerRequest: number;
  /** The window's bounds, epoch ms. */
  windowMs: { from: number; to: number };
  /** Where the window's requests spent their time, from full's spans (null: none arrived; absent: no collector watched). */
  inside?: SpanTimings | null;
  /** What the server's garbage collector did in the window (absent: not watched). */
  gc?: GcWindow;
  /** What PostgreSQL did in the window: checkpoints, WAL, pages read in (absent: not read). */
  pg?: PgWindow;
  /** PostgreSQL's CPU in the window (absent: its processes not read). */
  pgCpu?: PgCpuWindow;
  /** What else the machine did in the window (absent: not read). */
  host?: HostWindow;
  /** How late the server's event loop ran its timer in the window, from its /metrics (null: not exposed). */
  loopDelay?: LoopDelay | null;
  /** --soak-profile sampled the server in this window: its CPU, p99 and RSS carry the profiler's cost, and the verdicts leave the window out. */
  profiled?: true;
}

/** The machine around the server, read at a window's edges. */
export interface HostCounters {
  machine: MachineCpu;
  /** The server's main thread's wait for a core so far (runQueueWaitMs), ms; NaN without schedstats. */
  serverRunQueueMs: number;
  /** CPU so far of the bench's own process (the orchestrator, with the span sink in it) and of the load generator, ms. */
  benchCpuMs: number;
  loadgenCpuMs: number;
  /** The time a fixed piece of work took on the bench's main thread (servers.ts machineProbeMs), ms; absent: not run. */
  probeMs?: number;
}

/** What the machine did in a window: how busy its cores were, and who else was using them. */
export interface HostWindow {
  /** Busy share of all the machine's cores, and the share spent waiting on I/O, %. */
  busyPct: number;
  iowaitPct: number;
  /** How long the server's main thread, ready to run, waited for a core, ms per request. */
  serverRunQueueMsPerRequest: number;
  /** The bench's own process and the load generator, % of one core. */
  benchCorePct: number;
  loadgenCorePct: number;
  /**
   * The load generator's CPU per request answered, ms. It runs no custos code
   * and does the same work for every request, so it moves only with the
   * machine: the yardstick for the server's CPU per request (HostTrend).
   */
  loadgenMsPerRequest: number;
  /** The fixed piece of work's time before the window, with the load off (NaN: not run). */
  probeMs: number;
}

/** The difference of two host readings over a window of `seconds` with `requests` answered. */
export function hostWindow(before: HostCounters, after: HostCounters, requests: number, seconds: number): HostWindow {
  const total = after.machine.totalMs - before.machine.totalMs;
  const pct = (a: number, b: number, of: number) => (of > 0 ? (Math.max(0, b - a) / of) * 100 : NaN);
  const core = seconds * 1000;
  return {
    busyPct: pct(before.machine.busyMs, after.machine.busyMs, total),
    iowaitPct: pct(before.machine.iowaitMs, after.machine.iowaitMs, total),
    serverRunQueueMsPerRequest: requests > 0 ? Math.max(0, after.serverRunQueueMs - before.serverRunQueueMs) / requests : NaN,
    benchCorePct: pct(before.benchCpuMs, after.benchCpuMs, core),
    loadgenCorePct: pct(before.loadgenCpuMs, after.loadgenCpuMs, core),
    loadgenMsPerRequest: requests > 0 ? Math.max(0, after.loadgenCpuMs - before.loadgenCpuMs) / requests : NaN,
    probeMs: before.probeMs ?? NaN,
  };
}

/** PostgreSQL's CPU in a soak window, from /proc. */
export interface PgCpuWindow {
  /** The bench database's backends, per request answered. */
  backendsMsPerRequest: number;
  /** How long those backends, ready to run, waited for a core, per request (NaN without schedstats). */
  backendsRunQueueMsPerRequest: number;
  /** The server's other processes (checkpointer, WAL writer, background writer…), % of a core. */
  otherCorePct: number;
}

/** PostgreSQL's CPU between two readings of its processes; a process that ended meanwhile is lost, one that started counts whole. */
export function pgCpuWindow(before: Map<number, PostgresProcess>, after: Map<number, PostgresProcess>, requests: number, seconds: number): PgCpuWindow {
  let backends = 0;
  let waited = 0;
  let other = 0;
  for (const [pid, p] of after) {
    const used = Math.max(0, p.cpuMs - (before.get(pid)?.cpuMs ?? 0));
    if (p.ofDatabase) {
      backends += used;
      waited += Math.max(0, p.runQueueWaitMs - (before.get(pid)?.runQueueWaitMs ?? 0));
    } else other += used;
  }
  return {
    backendsMsPerRequest: requests > 0 ? backends / requests : NaN,
    backendsRunQueueMsPerRequest: requests > 0 ? waited / requests : NaN,
    otherCorePct: seconds > 0 ? (other / (seconds * 1000)) * 100 : NaN,
  };
}

/** The collector full exports to, asked for the timings of each window's spans once they have all arrived. */
export interface SoakSpans {
  sink: Pick<OtlpSink, 'watch' | 'timings'>;
  /** Resolves once full has no span left to export. */
  settled(): Promise<unknown>;
}

export interface SoakResult {
  rate: number;
  samples: SoakSample[];
  /** Least-squares slope of RSS over time, MB per minute, over the second half of the windows (the first half lets the heap settle). */
  rssSlopeMbPerMin: number;
  /** null: too few windows to tell. */
  grows: boolean | null;
  /** The same slope split by where the memory is (see rssSplit); absent when the collector was not watched or logged no memory. */
  rssSplit?: RssSplit;
  /** The client's p99 at the end of the soak against its start (see p99Trend). */
  p99: P99Trend;
  /** Windows whose p99 stood out, and whether checkpoints ended in them (absent: PostgreSQL's statistics not read). */
  stalls?: ReturnType<typeof stallsAndCheckpoints>;
  /** PostgreSQL's work per request at the end of the soak against its start (absent: not read). */
  pgTrend?: PgTrend;
  /** The machine at the end of the soak against its start (absent: not read). */
  hostTrend?: HostTrend;
  /** What major collections left on the heap over the second half (see heapTrend); absent when the collector was not watched. */
  /** --soak-profile: the server's CPU profile in early windows against the last ones (absent: not profiled, or a profile was not written). */
  profile?: SoakProfile;
  heap?: HeapTrend & {
    /** How fast the old generation filled between those collections, MB/s (oldGenerationGrowth), and per request, kB. */
    oldGrowthMbPerSec: number | null;
    oldGrowthKbPerRequest: number | null;
  };
}

/** A half-open range of window indexes. */
export interface WindowRange {
  from: number;
  to: number;
}

export interface SoakProfile {
  /** The windows each profile covers (0-based, half-open), the requests answered in them, and what /proc read of the server over them. */
  early: WindowRange & ReturnType<typeof rangeReadings>;
  late: WindowRange & ReturnType<typeof rangeReadings>;
  shift: ProfileShift;
}

/** Windows per profile of --soak-profile. */
const PROFILED_WINDOWS = 3;

/**
 * The windows --soak-profile profiles: three early ones once the server has settled after the
 * priming load (windows 4–6, the first third's windows the p99 comparison starts with), and the
 * last three; none when the soak is too short for the two to stay apart.
 */
export function profiledWindows(windows: number): WindowRange[] {
  const early = { from: P99_SETTLE, to: P99_SETTLE + PROFILED_WINDOWS };
  const late = { from: windows - PROFILED_WINDOWS, to: windows };
  return late.from < early.to ? [] : [early, late];
}

/** Waits for a .cpuprofile in `dir` that is not among `seen` (the profiler writes it aside and renames it once whole). */
async function nextProfile(dir: string, seen: readonly string[], timeoutMs = 60_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const fresh = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f)).find((f) => !seen.includes(f));
    if (fresh) return fresh;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`the soaked server wrote no CPU profile into ${dir} within ${timeoutMs / 1000} s`);
}

/** Compares the early profile with the late one, per request, and prints the comparison. */
function profileReport(ranges: WindowRange[], files: string[], samples: SoakSample[]): SoakProfile | undefined {
  const [early, late] = ranges;
  const [earlyFile, lateFile] = files;
  if (!early || !late || !earlyFile || !lateFile) {
    console.log('the soak was too short to profile an early and a late stretch of windows apart');
    return undefined;
  }
  const e = { ...early, ...rangeReadings(samples, early) };
  const l = { ...late, ...rangeReadings(samples, late) };
  const shift = profileShift({ work: profileWork(readProfile(earlyFile)), requests: e.requests }, { work: profileWork(readProfile(lateFile)), requests: l.requests });
  const label = (r: WindowRange) => `windows ${r.from + 1}–${r.to} (t ${r.from * WINDOW_SEC}–${r.to * WINDOW_SEC} s)`;
  console.log(shiftSummary(shift, { early: label(early), late: label(late) }));
  const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '—');
  console.log(
    `the same windows from /proc: the server's CPU ${ms(e.cpuMsPerRequest)} → ${ms(l.cpuMsPerRequest)} ms per request (all its threads), ` +
      `its main thread's wait for a core ${ms(e.serverWaitMsPerRequest)} → ${ms(l.serverWaitMsPerRequest)} ms per request (part of a profile's busy time)`,
  );
  return { early: e, late: l, shift };
}

/** Over a range of windows: the requests answered, and per request (weighted by each window's requests) the server's CPU and its main thread's wait for a core (NaN where not read). */
export function rangeReadings(samples: Array<Pick<SoakSample, 'requests' | 'cpuMsPerRequest' | 'host'>>, r: WindowRange): { requests: number; cpuMsPerRequest: number; serverWaitMsPerRequest: number } {
  const part = samples.slice(r.from, r.to);
  const requests = part.reduce((a, s) => a + s.requests, 0);
  const weighted = (pick: (s: (typeof part)[number]) => number | undefined) => {
    const read = part.filter((s) => s.requests > 0 && Number.isFinite(pick(s)));
    const n = read.reduce((a, s) => a + s.requests, 0);
    return n > 0 && read.length === part.length ? read.reduce((a, s) => a + pick(s)! * s.requests, 0) / n : NaN;
  };
  return { requests, cpuMsPerRequest: weighted((s) => s.cpuMsPerRequest), serverWaitMsPerRequest: weighted((s) => s.host?.serverRunQueueMsPerRequest) };
}

/**
 * The windows the RSS and heap verdicts fit: the second half, without the windows --soak-profile profiled.
 * V8's profiler keeps its samples in native memory until it stops (3–5 MB more RSS over the last three windows
 * of a 600 s soak of full), and its sampling raises a window's CPU and p99.
 */
export function fittedWindows<T extends Pick<SoakSample, 'profiled'>>(samples: T[]): T[] {
  return samples.slice(Math.floor(samples.length / 2)).filter((s) => !s.profiled);
}

/** The heap each major collection left, fitted over the second half of the soak. */
export interface HeapTrend {
  /** Major collections in the fit. */
  majors: number;
  /** Their median, MB. */
  levelMb: number;
  slopeMbPerMin: number;
  /** null: too few collections to tell. */
  grows: boolean | null;
}

/** Slopes over the same windows as the RSS verdict, MB per minute, of the parts of RSS the server's GC log reports. */
export interface RssSplit {
  /** What V8 committed for its heap, all spaces. */
  heapCommitted: number;
  /** Of it, the young generation (new_space and new_large_object_space). */
  young: number;
  /** Of it, compiled code (code_space, code_large_object_space). */
  code: number;
  /** RSS less the committed heap: native memory, the allocator's, Buffers, thread stacks, the binary. */
  outside: number;
}

/**
 * Which part of RSS moved over the fitted windows: each window's memory as
 * the server last logged it (its own reading of RSS, taken with the heap's),
 * fitted by least squares like RSS itself. null when fewer than two windows
 * carry a reading.
 */
export function rssSplit(windows: Array<{ t: number; memory: MemorySnapshot | null }>): RssSplit | null {
  const read = windows.filter((w): w is { t: number; memory: MemorySnapshot } => w.memory !== null);
  if (read.length < 2) return null;
  const fit = (part: (m: MemorySnapshot) => number) => slope(read.map((w) => [w.t / 60, part(w.memory)]));
  return {
    heapCommitted: fit((m) => m.heapCommittedMb),
    young: fit((m) => spacesTotalMb(m, YOUNG_SPACES)),
    code: fit((m) => spacesTotalMb(m, CODE_SPACES)),
    outside: fit((m) => m.rssMb - m.heapCommittedMb),
  };
}

/** Median p99 of the first third of the windows (its first 30 s left out) and of the last third, ms, and whether it grew. */
export interface P99Trend {
  startMs: number;
  endMs: number;
  /** null: too few windows to tell. */
  grows: boolean | null;
}

const WINDOW_SEC = 10;
/** Windows fitted for a verdict on RSS growth (two minutes, in the second half of the soak: four minutes in all). */
const MIN_FIT = 12;

/** The end's p99 may be this many times the start's before the soak says it grows: one window's p99 moves ~2× here. */
const P99_GROWTH = 1.5;
/** Windows left out at the start of the p99 comparison: the server settles after the priming load. */
const P99_SETTLE = 3;

/**
 * Whether the p99 climbed over the soak: the median of the last third of
 * the windows against the median of the first third, so that a climb shows
 * wherever it happens (a cost that grows with the audit trail did: 15.5 → 46 ms
 * over ten minutes, while RSS stayed flat). Medians, since a single window's
 * p99 on this shared machine moves by 2×.
 */
export function p99Trend(p99s: number[]): P99Trend {
  const { start: startMs, end: endMs } = thirds(p99s);
  return { startMs, endMs, grows: Number.isNaN(startMs) ? null : p99s.length < 2 * MIN_FIT ? null : endMs > P99_GROWTH * startMs };
}

/** The median of the first third of a series (its first P99_SETTLE values left out when the third is longer) and of its last third; NaN when too short or unread. */
export function thirds(values: Array<number | null>): { start: number; end: number } {
  const third = Math.floor(values.length / 3);
  if (third === 0) return { start: NaN, end: NaN };
  const read = (part: Array<number | null>) => {
    const known = part.filter((v): v is number => v !== null && Number.isFinite(v));
    return known.length > 0 ? median(known) : NaN;
  };
  return { start: read(values.slice(third > P99_SETTLE ? P99_SETTLE : 0, third)), end: read(values.slice(values.length - third)) };
}

/** PostgreSQL's work per request over the first third of a soak's windows and over its last third (medians; see thirds). */
export interface PgTrend {
  /** CPU of the bench database's backends, ms per request. */
  backendCpuMs: { start: number; end: number };
  /** Pages the database's backends read in from outside shared_buffers, per request; of them the audit trail's. */
  pagesRead: { start: number; end: number };
  auditPagesRead: { start: number; end: number };
  /** WAL written, kB per request. */
  walKb: { start: number; end: number };
}

/** Per window and request, the figures PgTrend compares; null where a window's figure was not read. */
export function pgPerRequest(s: Pick<SoakSample, 'requests' | 'pg' | 'pgCpu'>): { backendCpuMs: number | null; pagesRead: number | null; auditPagesRead: number | null; walKb: number | null } {
  const per = (v: number | null | undefined) => (v === null || v === undefined || !(s.requests > 0) ? null : v / s.requests);
  return {
    backendCpuMs: s.pgCpu && Number.isFinite(s.pgCpu.backendsMsPerRequest) ? s.pgCpu.backendsMsPerRequest : null,
    pagesRead: per(s.pg?.blocksRead),
    auditPagesRead: per(s.pg?.auditBlocksRead),
    walKb: per(s.pg?.walMb == null ? null : s.pg.walMb * 1024),
  };
}

/** The machine over the first third of a soak's windows and over its last third (medians; see thirds). */
export interface HostTrend {
  busyPct: { start: number; end: number };
  serverRunQueueMsPerRequest: { start: number; end: number };
  /** The server's event loop, p99 of how late it ran its timer, ms (see LoopDelay). */
  loopDelayP99Ms: { start: number; end: number };
  /** The bench database's backends' wait for a core, ms per request. */
  pgRunQueueMsPerRequest: { start: number; end: number };
  benchCorePct: { start: number; end: number };
  loadgenCorePct: { start: number; end: number };
  /** The machine probe's time, ms: a slower machine takes longer. */
  probeMs: { start: number; end: number };
  /**
   * The server's CPU per request over the load generator's (serverPerLoadgen),
   * and how closely the two moved together from window to window (Pearson's
   * r over the windows after the first P99_SETTLE, the profiled ones left
   * out). A drift the load generator shares (r near 1, the ratio level) is
   * the machine's; one of the server's own moves the ratio.
   */
  serverPerLoadgen: { start: number; end: number };
  serverLoadgenR: number;
}

/** A window's server CPU per request over the load generator's; null where either is unknown or the server was profiled. */
export function serverPerLoadgen(s: Pick<SoakSample, 'cpuMsPerRequest' | 'host' | 'profiled'>): number | null {
  const yardstick = s.host?.loadgenMsPerRequest;
  if (s.profiled || yardstick === undefined || !(yardstick > 0) || !Number.isFinite(s.cpuMsPerRequest)) return null;
  return s.cpuMsPerRequest / yardstick;
}

export function hostTrend(samples: Array<Pick<SoakSample, 'host' | 'loopDelay' | 'pgCpu' | 'cpuMsPerRequest' | 'profiled'>>): HostTrend {
  const of = (pick: (h: HostWindow) => number) => thirds(samples.map((s) => (s.host ? pick(s.host) : null)));
  const paired = samples
    .slice(P99_SETTLE)
    .flatMap((s): Array<[number, number]> => (s.host && serverPerLoadgen(s) !== null ? [[s.cpuMsPerRequest, s.host.loadgenMsPerRequest]] : []));
  return {
    busyPct: of((h) => h.busyPct),
    serverRunQueueMsPerRequest: of((h) => h.serverRunQueueMsPerRequest),
    loopDelayP99Ms: thirds(samples.map((s) => s.loopDelay?.p99Ms ?? null)),
    pgRunQueueMsPerRequest: thirds(samples.map((s) => s.pgCpu?.backendsRunQueueMsPerRequest ?? null)),
    benchCorePct: of((h) => h.benchCorePct),
    loadgenCorePct: of((h) => h.loadgenCorePct),
    probeMs: of((h) => h.probeMs),
    serverPerLoadgen: thirds(samples.map(serverPerLoadgen)),
    serverLoadgenR: pearson(paired),
  };
}

export function pgTrend(samples: Array<Pick<SoakSample, 'requests' | 'pg' | 'pgCpu'>>): PgTrend {
  const rows = samples.map(pgPerRequest);
  return {
    backendCpuMs: thirds(rows.map((r) => r.backendCpuMs)),
    pagesRead: thirds(rows.map((r) => r.pagesRead)),
    auditPagesRead: thirds(rows.map((r) => r.auditPagesRead)),
    walKb: thirds(rows.map((r) => r.walKb)),
  };
}

/** Major collections needed for a heap verdict: V8 ran about one every 5–8 s in the soaks here, so a 600 s soak gives ~40 in its second half. */
const MIN_MAJORS = 12;
/** The heap may climb this share of its level per ten minutes before the soak says it grows. */
const HEAP_GROWTH = 0.05;

/**
 * Whether what the program holds grows: the least-squares slope of the heap
 * left after each major collection ([minutes, MB] points). Unlike RSS, which
 * also moves with what the allocator keeps or returns, this moves only with
 * live objects: in a 300 s soak here it stayed within 38.3–40.9 MB, so a
 * climb of 5 % of it per ten minutes (~2 MB, 0.2 MB/min) stands well clear
 * of the noise, and a leak that slow would still cost ~12 MB an hour.
 */
export function heapTrend(points: Array<[number, number]>): HeapTrend {
  const levelMb = median(points.map(([, mb]) => mb));
  const slopeMbPerMin = slope(points);
  const grows = points.length < MIN_MAJORS ? null : slopeMbPerMin * 10 > HEAP_GROWTH * levelMb;
  return { majors: points.length, levelMb, slopeMbPerMin, grows };
}

/** Sums of the pairs' products and squares about their means. */
function spread(points: Array<[number, number]>): { sxy: number; sxx: number; syy: number } {
  const n = points.length;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  return {
    sxy: points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0),
    sxx: points.reduce((a, [x]) => a + (x - mx) ** 2, 0),
    syy: points.reduce((a, [, y]) => a + (y - my) ** 2, 0),
  };
}

/** Pearson's correlation of the pairs' x and y; NaN for fewer than three pairs or a side that never varies. */
export function pearson(points: Array<[number, number]>): number {
  if (points.length < 3) return NaN;
  const { sxy, sxx, syy } = spread(points);
  if (!(sxx > 0) || !(syy > 0)) return NaN;
  // Rounding can take |r| a hair past 1 for pairs on a line.
  return Math.max(-1, Math.min(1, sxy / Math.sqrt(sxx * syy)));
}

/** Slope of y over x by least squares. */
export function slope(points: Array<[number, number]>): number {
  if (points.length < 2) return 0;
  const { sxy, sxx } = spread(points);
  return sxx === 0 ? 0 : sxy / sxx;
}

export async function soak(opts: {
  /** Which server is soaked: full as deployed, off or the floor (bench/args.ts --soak-variant). */
  variant: Variant;
  worker: LoadWorker;
  server: ServerHandle;
  headers: Record<string, string>;
  bodies: string[];
  seconds: number;
  rate: number;
  connections: number;
  spans?: SoakSpans;
  /** The server's GC log so far (bench/gc-watch.ts). */
  gc?: { read(): GcBatch[] };
  /**
   * PostgreSQL's cumulative statistics (bench/pg-activity.ts), read before and after each window, and where the
   * server runs on this machine, its processes' CPU (bench/servers.ts postgresProcesses).
   */
  pg?: { read(): Promise<PgCounters>; processes?(): Map<number, PostgresProcess> };
  /** The machine's CPU and the other processes of the bench, read at each window's edges; the machine probe (servers.ts machineProbeMs), run before each window. */
  host?: { read(): HostCounters; probe?(): number };
  /** Where the server, preloaded with bench/cpu-profiler.ts, writes the profiles SIGUSR2 takes: then it is profiled in profiledWindows. */
  profileDir?: string;
}): Promise<SoakResult> {
  const windows = Math.max(1, Math.floor(opts.seconds / WINDOW_SEC));
  const samples: SoakSample[] = [];
  const started = performance.now();
  // Every span that starts from now to the end (plus a minute for stragglers) is kept for the breakdown below.
  opts.spans?.sink.watch(Date.now(), Date.now() + (windows * WINDOW_SEC + 60) * 1000);
  console.log(`soak: ${windows} × ${WINDOW_SEC} s at ${opts.rate} req/s (mixed S1–S4), ${opts.variant} variant`);
  console.log('   t s   req/s   p99 ms  errors  RSS MB  CPU ms/req');
  const profiling = opts.profileDir ? { dir: opts.profileDir, ranges: profiledWindows(windows), files: [] as string[] } : undefined;
  for (let i = 0; i < windows; i++) {
    let cpuBefore = 0;
    let from = 0;
    let pgBefore: PgCounters | undefined;
    let processesBefore: Map<number, PostgresProcess> | undefined;
    let hostBefore: HostCounters | undefined;
    const job = { url: `${opts.server.url}/graphql`, connections: opts.connections, warmupSec: 0, durationSec: WINDOW_SEC, overallRate: opts.rate, headers: opts.headers, bodies: opts.bodies };
    const load: LoadResult = await opts.worker.run(job, async () => {
      // The probe first, so that the readings below start after it (it runs on the bench's own thread).
      const probeMs = opts.host?.probe?.();
      // A scrape starts the server's event-loop delay afresh: the one after the window reads the window's alone.
      await readCounters(opts.server.url);
      pgBefore = await opts.pg?.read();
      processesBefore = opts.pg?.processes?.();
      hostBefore = opts.host ? { ...opts.host.read(), ...(probeMs === undefined ? {} : { probeMs }) } : undefined;
      cpuBefore = cpuMs(opts.server.pid);
      if (profiling?.ranges.some((r) => r.from === i)) process.kill(opts.server.pid, 'SIGUSR2');
      from = Date.now();
    });
    const to = Date.now();
    if (profiling?.ranges.some((r) => r.to === i + 1)) {
      process.kill(opts.server.pid, 'SIGUSR2');
      profiling.files.push(await nextProfile(profiling.dir, profiling.files));
    }
    const hostAfter = opts.host?.read();
    const processesAfter = opts.pg?.processes?.();
    const pgAfter = await opts.pg?.read();
    const { loopDelay } = await readCounters(opts.server.url);
    const sample: SoakSample = {
      t: Math.round((performance.now() - started) / 1000),
      requests: load.requests,
      rps: load.rps,
      p99: load.p99,
      errors: load.non2xx + load.transportErrors + load.graphqlErrors,
      rssMb: rssMb(opts.server.pid),
      cpuMsPerRequest: load.requests > 0 ? (cpuMs(opts.server.pid) - cpuBefore) / load.requests : NaN,
      windowMs: { from, to },
      ...(pgBefore && pgAfter ? { pg: pgWindow(pgBefore, pgAfter) } : {}),
      ...(processesBefore && processesAfter ? { pgCpu: pgCpuWindow(processesBefore, processesAfter, load.requests, (to - from) / 1000) } : {}),
      ...(hostBefore && hostAfter ? { host: hostWindow(hostBefore, hostAfter, load.requests, (to - from) / 1000) } : {}),
      loopDelay,
      ...(profiling?.ranges.some((r) => i >= r.from && i < r.to) ? { profiled: true as const } : {}),
    };
    samples.push(sample);
    console.log(
      `${String(sample.t).padStart(6)} ${sample.rps.toFixed(0).padStart(7)} ${sample.p99.toFixed(1).padStart(8)} ${String(sample.errors).padStart(7)} ` +
        `${sample.rssMb.toFixed(0).padStart(7)} ${sample.cpuMsPerRequest.toFixed(2).padStart(11)}`,
    );
  }
  const profile = profiling ? profileReport(profiling.ranges, profiling.files, samples) : undefined;
  if (opts.spans) await breakdown(opts.spans, samples);
  const stalls = opts.pg ? postgresReport(samples) : undefined;
  const pgWork = opts.pg ? postgresPerRequest(samples) : undefined;
  const machine = opts.host ? hostReport(samples) : undefined;
  const batches = opts.gc ? await collector(opts.gc, samples, opts.variant) : undefined;
  // The heap settles first: after the priming load, RSS fell from ~300 to ~200 MB over the first 90 s of a
  // 600 s soak at 100 req/s, and a fit from the start took that for a negative slope that hid a later climb.
  const fitted = fittedWindows(samples);
  const rssSlopeMbPerMin = slope(fitted.map((s) => [s.t / 60, s.rssMb]));
  // "Grows": a steady climb worth more than 2 % of the footprint per ten minutes; GC makes a shorter series meaningless.
  const first = fitted[0]?.rssMb ?? 0;
  const grows = fitted.length < MIN_FIT ? null : rssSlopeMbPerMin * 10 > 0.02 * first;
  const anyProfiled = samples.some((s) => s.profiled);
  const leftOut = anyProfiled ? ', the profiled windows left out' : '';
  console.log(`RSS slope ${rssSlopeMbPerMin.toFixed(2)} MB/min over the last ${fitted.length} samples (the second half${leftOut}) → ${verdict(grows)}`);
  const p99 = p99Trend(samples.map((s) => (s.profiled ? NaN : s.p99)));
  if (Number.isFinite(p99.startMs) && Number.isFinite(p99.endMs)) {
    console.log(`p99 median ${p99.startMs.toFixed(1)} ms over the first third of the windows, ${p99.endMs.toFixed(1)} ms over the last third${leftOut} → ${verdict(p99.grows)}`);
  } else console.log(`p99 ${verdict(p99.grows)}`);
  const extras = { ...(stalls ? { stalls } : {}), ...(pgWork ? { pgTrend: pgWork } : {}), ...(machine ? { hostTrend: machine } : {}), ...(profile ? { profile } : {}) };
  if (!batches) return { rate: opts.rate, samples, rssSlopeMbPerMin, grows, p99, ...extras };
  const split = rssSplit(fitted.map((s) => ({ t: s.t, memory: s.gc?.memory ?? null }))) ?? undefined;
  if (split) {
    console.log(
      `  of that slope: V8's committed heap ${signed(split.heapCommitted)} MB/min (young generation ${signed(split.young)}, code ${signed(split.code)}), ` +
        `outside V8's heap ${signed(split.outside)} MB/min (the server's own readings)`,
    );
  }
  const since = fitted[0]?.windowMs.from ?? Infinity;
  // With profiles, up to the last window fitted: a profile's stop builds the whole profile on the heap.
  const until = anyProfiled ? (fitted.at(-1)?.windowMs.to ?? -Infinity) : Infinity;
  const late = batches.filter((b) => b.t > since && b.t <= until);
  const trend = heapTrend(late.flatMap((b) => b.majors.map((m): [number, number] => [b.t / 60_000, m.retainedMb])));
  console.log(
    `heap left after each major GC: median ${trend.levelMb.toFixed(1)} MB over the ${trend.majors} collections of the second half, slope ${signed(trend.slopeMbPerMin)} MB/min → ` +
      verdict(trend.grows, `${MIN_MAJORS} major collections`),
  );
  const oldGrowthMbPerSec = oldGenerationGrowth(late);
  const rps = median(fitted.map((s) => s.rps));
  const oldGrowthKbPerRequest = oldGrowthMbPerSec === null || !(rps > 0) ? null : (oldGrowthMbPerSec * 1024) / rps;
  if (oldGrowthMbPerSec !== null && oldGrowthKbPerRequest !== null) {
    console.log(`between them the old generation filled at ${oldGrowthMbPerSec.toFixed(2)} MB/s: ${oldGrowthKbPerRequest.toFixed(1)} kB per request (promoted, or large objects)`);
  }
  return {
    rate: opts.rate, samples, rssSlopeMbPerMin, grows, rssSplit: split, p99, ...extras,
    heap: { ...trend, oldGrowthMbPerSec, oldGrowthKbPerRequest },
  };
}

function signed(v: number): string {
  return `${v >= 0 ? '+' : ''}${v.toFixed(2)}`;
}

function verdict(grows: boolean | null, needs = `${2 * MIN_FIT} windows`): string {
  return grows === null ? `too short to tell (needs ${needs})` : grows ? 'GROWS' : 'flat';
}

/**
 * What PostgreSQL did over the soak, and in the windows whose p99 stood out:
 * whether a checkpoint ended in them (its sync phase flushes every file it
 * wrote, and a commit's WAL flush can queue behind that on the same disk).
 */
function postgresReport(samples: SoakSample[]): ReturnType<typeof stallsAndCheckpoints> {
  const read = samples.filter((s): s is SoakSample & { pg: PgWindow } => s.pg !== undefined);
  const ended = read.filter((s) => s.pg.checkpointEnded);
  const walMb = read.map((s) => s.pg.walMb).filter((v): v is number => v !== null);
  const checkpoint = (pg: PgWindow) =>
    pg.checkpointEnded
      ? `a checkpoint ended (write phase ${(pg.checkpointWriteMs / 1000).toFixed(0)} s, sync ${pg.checkpointSyncMs.toFixed(0)} ms)`
      : pg.checkpointBuffers > 0
        ? `a checkpoint under way (${pg.checkpointBuffers} buffers written)`
        : 'no checkpoint writing';
  console.log(
    `PostgreSQL: ${read.reduce((a, s) => a + s.pg.checkpointsStarted, 0)} checkpoints started, ${ended.length} ended in the ${read.length} windows` +
      (ended.length > 0 ? ` (at t = ${ended.map((s) => s.t).join(', ')} s)` : '') +
      (walMb.length > 0 ? `; WAL ${(median(walMb) / WINDOW_SEC).toFixed(2)} MB/s (median of the windows)` : ''),
  );
  const result = stallsAndCheckpoints(samples);
  const ms = (q: { p99: number } | null | undefined) => (q ? `${q.p99.toFixed(1)} ms` : '—');
  if (result.stalls.length === 0) {
    console.log(`no window's p99 above ${STALL_FACTOR} × the median (${result.medianP99.toFixed(1)} ms)`);
    return result;
  }
  console.log(`windows with p99 above ${STALL_FACTOR} × the median (${result.medianP99.toFixed(1)} ms):`);
  for (const stall of result.stalls) {
    const sample = samples.find((s) => s.t === stall.t)!;
    const wal = stall.pg?.walMb == null ? '' : `, WAL ${stall.pg.walMb.toFixed(1)} MB`;
    console.log(
      `  t = ${stall.t} s: p99 ${stall.p99.toFixed(1)} ms (audit wait ${ms(sample.inside?.auditWaitMs)}, SQL each ${ms(sample.inside?.sqlMs)}), ` +
        `${stall.pg ? checkpoint(stall.pg) : 'PostgreSQL not read'}${wal}`,
    );
  }
  console.log(
    `a checkpoint ended in ${result.stallsWithCheckpointEnd} of these ${result.stalls.length} windows, and in ${result.windowsWithCheckpointEnd} of all ${result.windowsRead}`,
  );
  return result;
}

/**
 * Per window, PostgreSQL's work per request: its backends' CPU, the pages
 * they had to read in because `shared_buffers` did not hold them (of them the
 * audit trail's table and indexes), the share of the trail's pages found
 * there, the dirty pages backends wrote themselves to make room, the WAL and
 * its full-page images; then the same per request at the end against the
 * start. A trail whose indexes outgrow the buffer cache shows as pages read
 * and backend writes that climb with its CPU.
 */
function postgresPerRequest(samples: SoakSample[]): PgTrend {
  const cell = (v: number | null | undefined, digits: number, width: number) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits)).padStart(width);
  console.log('PostgreSQL per window (CPU from /proc; pages read in = not found in shared_buffers; backend writes = dirty pages a backend wrote to free a buffer, server-wide):');
  console.log('   t s  CPU ms/req  other %core  pages read/req  of audit  audit hit %  backend writes/s  WAL kB/req  FPI/req');
  for (const s of samples) {
    const r = pgPerRequest(s);
    const pg = s.pg;
    const auditSeen = pg && pg.auditBlocksHit !== null && pg.auditBlocksRead !== null ? pg.auditBlocksHit + pg.auditBlocksRead : null;
    const seconds = (s.windowMs.to - s.windowMs.from) / 1000;
    console.log(
      `${String(s.t).padStart(6)}${cell(r.backendCpuMs, 2, 12)}${cell(s.pgCpu?.otherCorePct, 1, 13)}${cell(r.pagesRead, 1, 16)}${cell(r.auditPagesRead, 1, 10)}` +
        `${cell(auditSeen ? (100 * pg!.auditBlocksHit!) / auditSeen : null, 2, 13)}${cell(pg?.backendWrites == null || !(seconds > 0) ? null : pg.backendWrites / seconds, 1, 18)}` +
        `${cell(r.walKb, 1, 12)}${cell(pg?.walFpi == null || !(s.requests > 0) ? null : pg.walFpi / s.requests, 2, 9)}`,
    );
  }
  const trend = pgTrend(samples);
  const span = (t: { start: number; end: number }, digits: number) => `${t.start.toFixed(digits)} → ${t.end.toFixed(digits)}`;
  console.log(
    `PostgreSQL per request, median of the first third of the windows against the last: backends' CPU ${span(trend.backendCpuMs, 2)} ms, ` +
      `pages read in ${span(trend.pagesRead, 1)} (the audit trail's ${span(trend.auditPagesRead, 1)}), WAL ${span(trend.walKb, 1)} kB`,
  );
  return trend;
}

/**
 * Per window, the machine around the server: how busy its cores were, how
 * long the server's main thread waited for one when it had work, and what
 * the bench's own processes took. A tail that grows while the server's own
 * work does not can then be told to come from a busier machine, or not.
 */
function hostReport(samples: SoakSample[]): HostTrend {
  const cell = (v: number | undefined, digits: number, width: number) => (v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(digits)).padStart(width);
  console.log(
    'the machine per window (busy and I/O wait: % of all its cores; the server\'s wait for a core when ready to run; the bench\'s own process, with the span sink, ' +
      'and the load generator: % of one core; probe: a fixed piece of work before the window, the load off):',
  );
  console.log('   t s  busy %  iowait %  server waited ms/req  its loop late p99 ms  PG backends waited ms/req  bench %core  load gen %core  probe ms');
  for (const s of samples) {
    const h = s.host;
    console.log(
      `${String(s.t).padStart(6)}${cell(h?.busyPct, 1, 8)}${cell(h?.iowaitPct, 1, 10)}${cell(h?.serverRunQueueMsPerRequest, 3, 22)}${cell(s.loopDelay?.p99Ms, 1, 22)}` +
        `${cell(s.pgCpu?.backendsRunQueueMsPerRequest, 3, 27)}${cell(h?.benchCorePct, 1, 13)}${cell(h?.loadgenCorePct, 1, 16)}${cell(h?.probeMs, 2, 10)}`,
    );
  }
  const trend = hostTrend(samples);
  const span = (t: { start: number; end: number }, digits: number) => `${t.start.toFixed(digits)} → ${t.end.toFixed(digits)}`;
  console.log(
    `the machine, median of the first third of the windows against the last: busy ${span(trend.busyPct, 1)} %, the server waited for a core ${span(trend.serverRunQueueMsPerRequest, 3)} ms per request ` +
      `(its loop late at p99 ${span(trend.loopDelayP99Ms, 1)} ms; PostgreSQL's backends waited ${span(trend.pgRunQueueMsPerRequest, 3)} ms per request), ` +
      `the bench's process ${span(trend.benchCorePct, 1)} % of a core, the load generator ${span(trend.loadgenCorePct, 1)} %, the probe ${span(trend.probeMs, 2)} ms`,
  );
  const r = Number.isFinite(trend.serverLoadgenR) ? trend.serverLoadgenR.toFixed(2) : '—';
  console.log(
    `the server's CPU per request against the load generator's (which runs no custos code and does the same work per request throughout): ` +
      `r = ${r} from window to window, their ratio ${span(trend.serverPerLoadgen, 2)} (first third against last, the profiled windows left out); ` +
      'a drift the two share is the machine\'s, one of the server\'s own moves the ratio',
  );
  return trend;
}

/** Per window, what the soaked server's garbage collector did, once the log has caught up with the last window; returns the whole log. */
async function collector(gc: { read(): GcBatch[] }, samples: SoakSample[], variant: Variant): Promise<GcBatch[]> {
  const last = samples.at(-1)?.windowMs.to ?? 0;
  for (let i = 0; i < 20 && !gc.read().some((b) => b.t > last); i++) await new Promise((r) => setTimeout(r, 250));
  const batches = gc.read();
  for (const sample of samples) sample.gc = gcWindow(batches, sample.windowMs.from, sample.windowMs.to);
  const mb = (v: number | null, width = 12) => (v === null ? '—' : v.toFixed(1)).padStart(width);
  console.log(`${variant}'s garbage collector per window (heap left after each major GC, median; GC time per second; at the window's end, what V8 had committed for its heap, of it the young generation, and the rest of RSS):`);
  console.log('   t s  major GCs   heap left MB  external MB  scavenge ms/s  major ms/s  V8 heap MB  young MB  outside MB');
  for (const s of samples) {
    const g = s.gc!;
    const m = g.memory;
    const young = m ? spacesTotalMb(m, YOUNG_SPACES) : null;
    console.log(
      `${String(s.t).padStart(6)} ${String(g.majors).padStart(10)} ${mb(g.retainedMb).padStart(14)} ${mb(g.externalMb)} ${g.scavengeMsPerSec.toFixed(1).padStart(14)} ${g.majorMsPerSec.toFixed(1).padStart(11)}` +
        `${mb(m ? m.heapCommittedMb : null)}${mb(young, 10)}${mb(m ? m.rssMb - m.heapCommittedMb : null)}`,
    );
  }
  return batches;
}

/**
 * Per window, where the requests' time went by full's own spans: the
 * server's time per request, the audit group-commit wait, of it the
 * group's write, and each policed statement (p99 of each), so that a p99 that climbs over the soak says
 * which of them climbs with it.
 */
async function breakdown(spans: SoakSpans, samples: SoakSample[]): Promise<void> {
  await spans.settled();
  for (const sample of samples) sample.inside = spans.sink.timings(sample.windowMs.from, sample.windowMs.to);
  const ms = (q: { p99: number } | null | undefined) => (q ? q.p99.toFixed(1) : '—').padStart(12);
  console.log('where it went, p99 ms from full\'s spans per window:');
  console.log('   t s  client p99  server p99  audit wait audit write    SQL each');
  for (const s of samples) {
    console.log(`${String(s.t).padStart(6)} ${s.p99.toFixed(1).padStart(11)}${ms(s.inside?.serverMs)}${ms(s.inside?.auditWaitMs)}${ms(s.inside?.auditFlushMs)}${ms(s.inside?.sqlMs)}`);
  }
}
