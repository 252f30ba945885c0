/**
 * Child processes of the benchmark (the three servers and the load worker),
 * what the orchestrator reads of them from /proc, and the guarantee that none
 * outlives the run: every child is registered and killed on exit, SIGINT or error.
 */
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import type { FromWorker, LoadJob, LoadResult, ToWorker } from './load-worker.js';

export const repoRoot = fileURLToPath(new URL('..', import.meta.url));
export type Variant = 'full' | 'off' | 'floor';
export const variants: readonly Variant[] = ['full', 'off', 'floor'];

const children = new Set<ChildProcess>();
process.on('exit', () => {
  // Last resort (normal paths stop children gracefully first): never leave an orphan.
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Keeps the last few KB of a stream (to explain a failed start) and drains it so the child never blocks. */
function tail(stream: NodeJS.ReadableStream | null): () => string {
  let text = '';
  stream?.on('data', (chunk: Buffer) => {
    text = (text + chunk.toString('utf8')).slice(-4000);
  });
  return () => text.trim();
}

/** Settles when the child exits (immediately if it already has). */
function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function stopChild(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited(child);
    clearTimeout(timer);
  }
  children.delete(child);
}

/** Stops every child still running (servers and worker). */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c)));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

export interface ServerHandle {
  variant: Variant;
  url: string;
  pid: number;
  /** Its working directory (where V8 writes its own log files). */
  cwd: string;
  /** Whether the server was given a collector (OTEL_EXPORTER_OTLP_ENDPOINT), so that its spans are counted. */
  exportsSpans: boolean;
  output: () => string;
}

/** Variables of the custos config that a variant sets itself: never inherited from the caller's shell. */
const custosKeys = [
  'NODE_ENV', 'PORT', 'HOST', 'DATABASE_URL', 'DB_POOL_MAX', 'POLICY_DIR', 'AUDIT_MODE', 'TRACING', 'LOG_LEVEL', 'SEED_DEMO', 'OTEL_EXPORTER_OTLP_ENDPOINT',
  'JWT_SECRET', 'JWKS_URL', 'KEYRING', 'KEK_ACTIVE_ID', 'BLIND_INDEX_KEY', 'CURSOR_SECRET', 'PSEUDONYM_KEY',
];

export interface ServerSpec {
  variant: Variant;
  /** Compiled entry file (bench/build.ts): the servers run as the image runs custos, without a TypeScript loader. */
  entry: string;
  env: Record<string, string>;
  /** Extra node flags before the entry (e.g. a preloaded profiler, compiled too). */
  nodeArgs?: string[];
  /** Working directory (a checkout); default this one. */
  cwd?: string;
}

/** Starts a server (`node <nodeArgs> <entry>`) on a free port and waits for /readyz. */
export async function startServer(spec: ServerSpec, timeoutMs = 90_000): Promise<ServerHandle> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of custosKeys) delete env[key];
  Object.assign(env, spec.env, { PORT: String(port), HOST: '127.0.0.1' });
  const cwd = spec.cwd ?? repoRoot;
  const child = spawn(process.execPath, [...(spec.nodeArgs ?? []), spec.entry], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  const handle: ServerHandle = {
    variant: spec.variant,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid ?? -1,
    cwd,
    exportsSpans: Boolean(spec.env.OTEL_EXPORTER_OTLP_ENDPOINT),
    output: () => `${out()}\n${err()}`.trim(),
  };
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${spec.variant} server exited (${child.exitCode}) before ready:\n${handle.output()}`);
    const ready = await fetch(`${handle.url}/readyz`).then((r) => r.ok, () => false);
    if (ready) return handle;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${spec.variant} server not ready after ${timeoutMs / 1000} s:\n${handle.output()}`);
}

const clockTicks = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100;

/** The probe's input: 1 MB of fixed bytes, made once. */
let probeData: Buffer | undefined;
/** The probe's last result, kept so that no compiler drops its work as unused. */
let _probeResult = 0;

/**
 * A fixed piece of CPU work, timed on this process's main thread, ms: SHA-256 over 4 MB (native code,
 * memory) and a loop of integer arithmetic (JIT-compiled JavaScript), the least of three runs, so that a
 * run the machine interrupted does not count. A soak runs it before each window, with its load off the
 * machine: the same work taking longer means a slower machine (a busier host under this VM, which reports
 * no steal time), whatever the servers do.
 */
export function machineProbeMs(): number {
  probeData ??= Buffer.from(Array.from({ length: 1 << 20 }, (_, i) => (i * 2654435761) >>> 24));
  let best = Infinity;
  let x = 0x9e3779b9;
  for (let run = 0; run < 3; run++) {
    const started = performance.now();
    for (let i = 0; i < 4; i++) x ^= createHash('sha256').update(probeData).digest().readUInt32LE(0);
    for (let i = 0; i < 2_000_000; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
    }
    best = Math.min(best, performance.now() - started);
  }
  _probeResult = x;
  return best;
}

/** utime + stime of a process, in milliseconds. */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name, which may itself contain spaces or parentheses.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicks;
}

/** The machine's CPU time since boot, all cores together, ms: busy (user, nice, system, irq, softirq, steal), waiting on I/O, and all of it. */
export interface MachineCpu {
  busyMs: number;
  iowaitMs: number;
  totalMs: number;
}

/** Reads the first line of /proc/stat ("cpu  user nice system idle iowait irq softirq steal guest guest_nice", in clock ticks; guest time is already in user). */
export function machineCpu(stat = readFileSync('/proc/stat', 'utf8')): MachineCpu {
  const line = stat.split('\n', 1)[0] ?? '';
  if (!/^cpu\s/.test(line)) throw new Error('/proc/stat does not begin with the machine\'s cpu line');
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line.trim().split(/\s+/).slice(1, 9).map(Number);
  const ms = (ticks: number) => (ticks * 1000) / clockTicks;
  const busy = user + nice + system + irq + softirq + steal;
  return { busyMs: ms(busy), iowaitMs: ms(iowait), totalMs: ms(busy + idle + iowait) };
}

/**
 * Time the process's main thread (for Node, its event loop) has waited on a run queue for a CPU
 * while runnable, ms: the second field of /proc/<pid>/schedstat. On a machine whose cores are
 * shared by the server, its PostgreSQL backends, the load generator and the span sink, a reply
 * that is ready can still wait here. NaN where the kernel keeps no such statistics.
 */
export function runQueueWaitMs(pid: number): number {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/schedstat`, 'utf8');
  } catch {
    // A kernel built without schedstats has no such file (and a process that has ended, none at all).
    return NaN;
  }
  const fields = text.trim().split(/\s+/);
  return fields.length >= 2 ? Number(fields[1]) / 1e6 : NaN;
}

/** Time spent runnable but waiting for a core over a window, ms: the server's main thread, and the database's backends together. */
export interface RunQueueWait {
  server: number;
  postgres: number;
}

/** What a PostgreSQL backend has used so far: CPU, and time spent runnable but waiting for a core (see runQueueWaitMs), ms. */
export interface BackendReading {
  cpuMs: number;
  runQueueWaitMs: number;
}

/** A PostgreSQL process's reading, and whether it is a backend serving the bench's database. */
export interface PostgresProcess extends BackendReading {
  ofDatabase: boolean;
}

/**
 * Every process of the local PostgreSQL server (pid → reading), in one pass
 * over /proc: the backends serving `database`, and the rest (the postmaster,
 * checkpointer, WAL writer, background writer, autovacuum, other databases'
 * backends), whose work a request causes too (the checkpointer writes what
 * the backends dirtied).
 */
export function postgresProcesses(database: string): Map<number, PostgresProcess> {
  const out = new Map<number, PostgresProcess>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      // Child titles read "postgres: 15/main: <user> <database> <client> <state>" for a backend, "postgres: 15/main: checkpointer" and
      // so on for the rest; the postmaster keeps its command line, ".../bin/postgres -D ...".
      const title = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      const child = title.startsWith('postgres: ');
      if (!child && !/(^|\/)postgres$/.test(title.split('\0')[0] ?? '')) continue;
      const pid = Number(entry);
      out.set(pid, { cpuMs: cpuMs(pid), runQueueWaitMs: runQueueWaitMs(pid), ofDatabase: child && title.split(' ')[3] === database });
    } catch {
      // The process ended between readdir and read.
    }
  }
  return out;
}

/** Each backend serving `database` (pid → reading): the benchmark's side of PostgreSQL, whatever else the machine runs. */
export function postgresBackends(database: string): Map<number, BackendReading> {
  return new Map([...postgresProcesses(database)].filter(([, p]) => p.ofDatabase));
}

/**
 * The two pools of a server (custos's and the floor's alike): the policed
 * reads' connections, which name themselves `…-reads` (custos-reads,
 * custos-floor-reads), and the others (custos: audit appends, principal
 * lookups, the audit index's merges, the auditor's queries).
 */
export type Pool = 'reads' | 'other';

export const poolOf = (applicationName: string): Pool => (applicationName.endsWith('-reads') ? 'reads' : 'other');

/** CPU the backends alive at the end added between two snapshots, ms, by the pool of each (`names`: pid → application name; a backend it lacks counts as other). */
export function postgresCpuByPool(before: Map<number, BackendReading>, after: Map<number, BackendReading>, names: ReadonlyMap<number, string>): Record<Pool, number> {
  const of = (pool: Pool) => new Map([...after].filter(([pid]) => poolOf(names.get(pid) ?? '') === pool));
  return { reads: postgresDelta(before, of('reads'), 'cpuMs'), other: postgresDelta(before, of('other'), 'cpuMs') };
}

/** pid → application name of each backend serving `database`, from pg_stat_activity (a connection of its own, closed after). */
export async function backendApplications(url: string, database: string): Promise<Map<number, string>> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const rows = await sql<Array<{ pid: number; name: string }>>`select pid, application_name as name from pg_stat_activity where datname = ${database}`;
    return new Map(rows.map((r) => [r.pid, r.name]));
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** What backends alive at the end added to one of their figures between two snapshots (new ones count whole; ended ones are lost). */
export function postgresDelta(before: Map<number, BackendReading>, after: Map<number, BackendReading>, figure: keyof BackendReading): number {
  let total = 0;
  for (const [pid, reading] of after) total += reading[figure] - (before.get(pid)?.[figure] ?? 0);
  return total;
}

export function rssMb(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : NaN;
}

/** Sums of every metric of a Prometheus text exposition over its label sets, or null when /metrics does not answer. */
async function metricSums(url: string): Promise<Map<string, number> | null> {
  const res = await fetch(`${url}/metrics`).catch(() => undefined);
  if (!res?.ok) return null;
  return parseMetricSums(await res.text());
}

/** Sums of every metric of a Prometheus text exposition over its label sets. */
export function parseMetricSums(text: string): Map<string, number> {
  const sums = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = /^([A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})?\s+([0-9.eE+-]+)/.exec(line);
    if (match) sums.set(match[1]!, (sums.get(match[1]!) ?? 0) + Number(match[2]));
  }
  return sums;
}

/** How late the server's event loop ran its timer, beyond the timer's own interval, ms. */
export interface LoopDelay {
  p99Ms: number;
  maxMs: number;
}

/**
 * The event-loop delay since the previous scrape, from prom-client's default metrics: a
 * `monitorEventLoopDelay` histogram that each scrape reads and then resets. It times a timer of
 * fixed interval (10 ms by default), so every sample is at least that interval: the smallest
 * sample (`min`) stands for it and is taken off, leaving how late the loop was. null when the
 * gauges are missing (the floor) or the histogram was empty (a scrape right after another).
 */
export function loopDelayOf(sums: Map<string, number>): LoopDelay | null {
  const [min, p99, max] = ['min', 'p99', 'max'].map((q) => sums.get(`nodejs_eventloop_lag_${q}_seconds`));
  if (min === undefined || p99 === undefined || max === undefined || !(max >= min) || !(min > 0)) return null;
  return { p99Ms: Math.max(0, (p99 - min) * 1000), maxMs: Math.max(0, (max - min) * 1000) };
}

/** custos's span export queue: every span ended is exported, failed, dropped or still pending. */
export interface SpanCounts {
  exported: number;
  failed: number;
  dropped: number;
  pending: number;
}

const spanGauges: Record<keyof SpanCounts, string> = {
  exported: 'custos_spans_exported_total',
  failed: 'custos_spans_failed_total',
  dropped: 'custos_spans_dropped_total',
  pending: 'custos_spans_pending',
};

/** What the orchestrator reads of a server's /metrics; null for what it does not expose. */
export interface ServerCounters {
  statements: number | null;
  spans: SpanCounts | null;
  /** GraphQL requests the server has answered (`custos_graphql_requests_total`, all label sets). */
  requests: number | null;
  /** GraphQL requests it has read and not yet answered (`custos_graphql_requests_in_flight`); null where not exposed. */
  inFlight: number | null;
  /** Audit records and group commits so far; null where the server writes none (off runs without an audit log, the floor has no /metrics). */
  audit: { records: number; commits: number } | null;
  /** Seconds the server's event loop has spent running code since it started (`custos_event_loop_busy_seconds_total`); null for the floor. */
  loopBusySec: number | null;
  /** The event-loop delay since the previous scrape (see loopDelayOf); null for the floor. */
  loopDelay: LoopDelay | null;
}

/** The span queue gauges, or null unless all four are exposed (the floor has none). */
function spanCountsOf(sums: Map<string, number>): SpanCounts | null {
  const counts: Partial<SpanCounts> = {};
  for (const [key, name] of Object.entries(spanGauges) as Array<[keyof SpanCounts, string]>) {
    const value = sums.get(name);
    if (value === undefined) return null;
    counts[key] = value;
  }
  return counts as SpanCounts;
}

/** One GET /metrics: `custos_db_statements_total` and `custos_graphql_requests_total` (all label sets), the span queue gauges, the audit and event-loop totals. */
export async function readCounters(url: string): Promise<ServerCounters> {
  const sums = await metricSums(url);
  if (!sums) return { statements: null, spans: null, requests: null, inFlight: null, audit: null, loopBusySec: null, loopDelay: null };
  const records = sums.get('custos_audit_records_total');
  const commits = sums.get('custos_audit_commits_total');
  return {
    statements: sums.get('custos_db_statements_total') ?? null,
    spans: spanCountsOf(sums),
    requests: sums.get('custos_graphql_requests_total') ?? null,
    inFlight: sums.get('custos_graphql_requests_in_flight') ?? null,
    // Off exposes the counters too, at zero: no audit log.
    audit: records === undefined || commits === undefined || commits === 0 ? null : { records, commits },
    loopBusySec: sums.get('custos_event_loop_busy_seconds_total') ?? null,
    loopDelay: loopDelayOf(sums),
  };
}

/** The forked load generator: one job at a time over IPC. */
export class LoadWorker {
  private constructor(private readonly child: ChildProcess) {}

  static start(): LoadWorker {
    const child = fork(fileURLToPath(new URL('./load-worker.ts', import.meta.url)), [], {
      cwd: repoRoot,
      execArgv: ['--import', 'tsx'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    children.add(child);
    return new LoadWorker(child);
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  /** Runs a job; `onWarm` runs between warm-up and measured window (snapshots), the window starts when it settles. */
  run(job: LoadJob, onWarm: () => Promise<void>): Promise<LoadResult> {
    const child = this.child;
    const limitMs = (job.warmupSec + job.durationSec + 60) * 1000;
    return new Promise<LoadResult>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`load worker gave no result within ${limitMs / 1000} s`)), limitMs);
      const onExit = () => finish(new Error('load worker exited'));
      const onMessage = (m: FromWorker) => {
        switch (m.type) {
          case 'warm':
            onWarm().then(
              () => child.send({ type: 'go' } satisfies ToWorker),
              (e: unknown) => finish(e as Error),
            );
            return;
          case 'result':
            return finish(undefined, m.result);
          case 'error':
            return finish(new Error(`load worker: ${m.message}`));
        }
      };
      function finish(error: Error | undefined, result?: LoadResult) {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        if (error || !result) reject(error ?? new Error('no result'));
        else resolve(result);
      }
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ type: 'run', job } satisfies ToWorker);
    });
  }

  async stop(): Promise<void> {
    if (this.child.connected) this.child.send({ type: 'exit' } satisfies ToWorker);
    await stopChild(this.child);
  }
}
