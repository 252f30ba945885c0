/**
 * Turns measured windows into the figures of the report: per scenario and
 * variant (rounds aggregated), the ratios against the targets, a Markdown
 * table for the terminal and bench/results/, and the JSON record.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportSummary, renderExport, type ExportResult } from './export-stream.js';
import type { LoadResult } from './load-worker.js';
import { median } from './quantile.js';
import type { Quantiles, SpanTimings } from './otlp-sink.js';
import type { PerfWindow } from './perf-cpu.js';
import type { ScenarioKey } from './scenarios.js';
import { repoRoot, variants, type LoopDelay, type Pool, type RunQueueWait, type SpanCounts, type Variant } from './servers.js';
import { describeSwitchOff, type Switch } from './split.js';

export interface Measurement {
  scenario: ScenarioKey;
  variant: Variant;
  connections: number;
  round: number;
  /** The rate a fixed-rate window was held at, req/s (`load.rps` is what it achieved); absent: as fast as the server answers. */
  rate?: number;
  load: LoadResult;
  /** Statements sent during the window (null: the server exposes no counter). */
  statements: number | null;
  /**
   * Requests the server answered between the same two readings (null: no counter, the floor). The
   * load generator's count stops at the window's end, the readings a little later: requests still
   * in flight then (up to one per connection) send statements and spans that its count leaves out.
   */
  served?: number | null;
  /**
   * Spans ended during the window (the delta of exported + failed + dropped +
   * pending) and of them dropped; null for a server that exports no spans.
   */
  spans: { ended: number; dropped: number } | null;
  /** Audit records written and group commits made during the window; null for a server that writes none. */
  audit?: { records: number; commits: number } | null;
  serverCpuMs: number;
  postgresCpuMs: number;
  /**
   * postgresCpuMs by the pool each backend belongs to (servers.ts `poolOf`): the policed reads' and the other (for
   * custos: audit appends, principal lookups, the audit index's merges); null when pg_stat_activity could not be
   * read, absent from results before session 32.
   */
  postgresCpuByPool?: Record<Pool, number> | null;
  loadgenCpuMs: number;
  /**
   * CPU of the bench's own process during the window, ms, all its threads: the stand-in collector receiving and
   * reading full's exports, and the load worker's IPC. Absent from results before session 24.
   */
  benchCpuMs?: number;
  rssMb: number;
  /**
   * Share of the window the server's event loop spent running code (from `custos_event_loop_busy_seconds_total`,
   * read at the window's edges); null for the floor, which exposes no metrics. Near 1, the one JavaScript thread
   * was the bottleneck; lower, requests were also waiting on PostgreSQL.
   */
  loopBusy?: number | null;
  /**
   * How late the server's event loop ran a 10 ms timer during the window, beyond the interval, p99 and max
   * (prom-client's `monitorEventLoopDelay` histogram, read at the window's edge); null for the floor, absent
   * from results before session 22. A loop held by one task (a collection, a span export, a large reply) holds
   * every request that is ready meanwhile.
   */
  loopDelayMs?: LoopDelay | null;
  /**
   * Time spent runnable but waiting for a CPU during the window, ms: the server's main thread and the database's
   * backends together (/proc/<pid>/schedstat); null where the kernel keeps no such statistics, absent before session 22.
   */
  runQueueWaitMs?: RunQueueWait | null;
  /** When the measured window ran (epoch ms, warm-up excluded). */
  windowMs?: { from: number; to: number };
  /** Full at a fixed rate: what its spans say about the window's requests (null: none arrived); absent elsewhere. */
  inside?: SpanTimings | null;
}

export interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  sqlPerRequest: number | null;
  /** Null where the variant exports no spans (off, floor). */
  spansPerRequest: number | null;
  spansDropped: number | null;
  /** Audit records per request and per group commit; null where the variant writes none (off, floor). */
  auditPerRequest?: number | null;
  auditPerCommit?: number | null;
  cpuMsPerRequest: number;
  pgCpuMsPerRequest: number;
  /** pgCpuMsPerRequest by pool; null when a window lacks it (results before session 32). */
  pgCpuMsPerRequestByPool?: Record<Pool, number> | null;
  /** Mean over the windows of `Measurement.loopBusy`; null for the floor (or a run recorded before it existed). */
  loopBusy?: number | null;
  loadgenCpuPct: number;
  /**
   * CPU of the bench's own process per request and as a share of one core (%) over the windows; for full, mostly the
   * stand-in collector taking its spans in. Null for results recorded before it was measured.
   */
  benchCpu?: { msPerRequest: number; pctOfCore: number } | null;
  rssMb: number;
  roundsRps: number[];
}

/** A cell that was not measured, and why. */
export type Cell = Figures | { na: string };
export const isFigures = (c: Cell | undefined): c is Figures => c !== undefined && !('na' in c);

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function figuresOf(ms: Measurement[]): Figures {
  const requests = sum(ms.map((m) => m.load.requests));
  const per = (total: number) => (requests > 0 ? total / requests : NaN);
  // Statements and spans are counted between the server's own readings: per request it answered in between.
  const served = ms.every((m) => typeof m.served === 'number') ? sum(ms.map((m) => m.served!)) : requests;
  const perServed = (total: number) => (served > 0 ? total / served : NaN);
  const statements = ms.map((m) => m.statements);
  const spans = ms.map((m) => m.spans);
  const spansKnown = spans.every((x): x is NonNullable<typeof x> => x !== null);
  const audits = ms.map((m) => m.audit ?? null);
  const auditKnown = audits.every((x): x is NonNullable<typeof x> => x !== null);
  const commits = auditKnown ? sum(audits.map((a) => a.commits)) : 0;
  const seconds = sum(ms.map((m) => m.load.durationSec));
  return {
    rps: sum(ms.map((m) => m.load.rps)) / ms.length,
    p50: median(ms.map((m) => m.load.p50)),
    p99: median(ms.map((m) => m.load.p99)),
    errors: sum(ms.map((m) => m.load.non2xx + m.load.transportErrors + m.load.graphqlErrors)),
    requests,
    sqlPerRequest: statements.every((s): s is number => s !== null) ? perServed(sum(statements)) : null,
    spansPerRequest: spansKnown ? perServed(sum(spans.map((x) => x.ended))) : null,
    spansDropped: spansKnown ? sum(spans.map((x) => x.dropped)) : null,
    auditPerRequest: auditKnown ? perServed(sum(audits.map((a) => a.records))) : null,
    auditPerCommit: auditKnown && commits > 0 ? sum(audits.map((a) => a.records)) / commits : null,
    cpuMsPerRequest: per(sum(ms.map((m) => m.serverCpuMs))),
    pgCpuMsPerRequest: per(sum(ms.map((m) => m.postgresCpuMs))),
    pgCpuMsPerRequestByPool: ms.every((m) => m.postgresCpuByPool)
      ? { reads: per(sum(ms.map((m) => m.postgresCpuByPool!.reads))), other: per(sum(ms.map((m) => m.postgresCpuByPool!.other))) }
      : null,
    loopBusy: ms.every((m) => typeof m.loopBusy === 'number') ? sum(ms.map((m) => m.loopBusy!)) / ms.length : null,
    loadgenCpuPct: seconds > 0 ? sum(ms.map((m) => m.loadgenCpuMs)) / seconds / 10 : NaN,
    benchCpu: ms.every((m) => typeof m.benchCpuMs === 'number') && seconds > 0
      ? { msPerRequest: per(sum(ms.map((m) => m.benchCpuMs!))), pctOfCore: sum(ms.map((m) => m.benchCpuMs!)) / seconds / 10 }
      : null,
    rssMb: ms.at(-1)!.rssMb,
    roundsRps: ms.map((m) => m.load.rps),
  };
}

export type Ratio = 'full/off' | 'full/floor';
export interface Target {
  scenario: ScenarioKey;
  ratio: Ratio;
  min: number;
}
export const targets: Target[] = [
  { scenario: 'S1', ratio: 'full/floor', min: 0.5 },
  { scenario: 'S2', ratio: 'full/floor', min: 0.5 },
  { scenario: 'S3', ratio: 'full/floor', min: 0.4 },
  { scenario: 'S1', ratio: 'full/off', min: 0.85 },
  { scenario: 'S2', ratio: 'full/off', min: 0.85 },
  { scenario: 'S3', ratio: 'full/off', min: 0.85 },
];
export const RSS_TARGET = 1.25;
/**
 * Spans per request of full, in every scenario (≤ max). "Constant" is about rows: S1 (50 customers) and S3
 * (one customer) are the same operation but for the number of rows, and may differ by half a span at most.
 * The other scenarios differ in what they do (S2 reads twice: customers, then their orders in one batched
 * statement; S5 reads the audit trail), not in rows.
 */
export const SPANS_TARGET = { max: 5, spread: 0.5 };

/** End-of-run reading of the full variant's span export against what the OTLP sink received. */
export interface SpanExport {
  /** custos's counters once nothing was pending any more (or the wait gave up). */
  custos: SpanCounts;
  sink: { spans: number; batches: number; refused: number };
}

/**
 * Full and off of S1–S3 at one rate each, the same for both (bench/run.ts
 * picks half the slower variant's 16-connection req/s). Judged on p99.
 */
export interface FixedRate {
  connections: number;
  warmupSec: number;
  durationSec: number;
  rounds: number;
  /** The rate of each scenario measured, req/s. */
  rates: Partial<Record<ScenarioKey, number>>;
  /** Scenarios of S1–S3 that ran but were not measured at a fixed rate, and why. */
  skipped: Partial<Record<ScenarioKey, string>>;
  /** Every fixed-rate window, each with its `rate`. */
  measurements: Measurement[];
}
/** p99 of full at a fixed rate ≤ this × off's. */
export const P99_TARGET = 1.2;
/** A window whose achieved req/s is further than this from its rate did not hold it: its p99 is not at that rate. */
export const RATE_TOLERANCE = 0.05;

export interface Report {
  meta: Record<string, unknown>;
  /** connections → scenario → variant → cell */
  cells: Record<string, Partial<Record<ScenarioKey, Partial<Record<Variant, Cell>>>>>;
  /** End-of-run resident memory of each server. */
  rssEndMb: Partial<Record<Variant, number>>;
  measurements: Measurement[];
  /** The fixed-rate comparison; absent when none of S1–S3 ran. */
  fixedRate?: FixedRate;
  /** The export stream and pages (bench/export-stream.ts); absent when not run. */
  exportStream?: ExportResult;
  /** The span cross-check at the end of the run; absent when full's /metrics could not be read. */
  spanExport?: SpanExport;
  /** With --perf: each recorded window's CPU samples by component (bench/perf-cpu.ts). */
  perf?: PerfWindow[];
}

/**
 * full/other of requests/s; with `by: 'cpu'`, other/full of CPU per request
 * (server + PostgreSQL): the capacity ratio if CPU were the only limit, far
 * steadier than req/s when other work shares the machine.
 */
export function ratioOf(report: Report, conns: string, scenario: ScenarioKey, ratio: Ratio, by: 'rps' | 'cpu' = 'rps'): number | null {
  const row = report.cells[conns]?.[scenario];
  const full = row?.full;
  const other = ratio === 'full/off' ? row?.off : row?.floor;
  if (!isFigures(full) || !isFigures(other)) return null;
  if (by === 'rps') return other.rps > 0 ? full.rps / other.rps : null;
  const cpu = (c: Figures) => c.cpuMsPerRequest + c.pgCpuMsPerRequest;
  return cpu(full) > 0 ? cpu(other) / cpu(full) : null;
}

const f = (x: number | null | undefined, digits = 1) => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(digits));
/** For figures that do not apply to a variant (spans of off and floor) rather than missing. */
const dash = (x: number | null, digits: number) => (x === null ? '—' : f(x, digits));
const verdict = (value: number | null, ok: (v: number) => boolean) => (value === null ? 'n/a' : ok(value) ? 'met' : 'MISSED');

export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

/** The tables as Markdown (printed to the terminal as is). */
export function renderTables(report: Report): string {
  const out: string[] = [];
  for (const [conns, byScenario] of Object.entries(report.cells)) {
    const rows: string[][] = [];
    const notes: string[] = [];
    for (const [scenario, byVariant] of Object.entries(byScenario)) {
      for (const variant of variants) {
        const c = byVariant[variant];
        if (!c) continue;
        if (!isFigures(c)) {
          rows.push([scenario, variant, 'n/a', '', '', '', '', '', '', '', '', '', '', '']);
          notes.push(`- ${scenario} ${variant}: ${c.na}`);
          continue;
        }
        rows.push([
          scenario, variant, f(c.rps, 0), f(c.p50), f(c.p99), String(c.errors), f(c.sqlPerRequest, 2),
          dash(c.spansPerRequest, 2), dash(c.spansDropped, 0), f(c.cpuMsPerRequest, 2), f(c.pgCpuMsPerRequest, 2), dash(c.loopBusy ?? null, 2), f(c.rssMb, 0), c.roundsRps.map((r) => r.toFixed(0)).join(' / '),
        ]);
      }
    }
    out.push(`### ${conns} connections\n`);
    out.push(table(['scen', 'variant', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'SQL/req', 'spans/req', 'dropped', 'CPU ms/req', 'PG CPU ms/req', 'loop busy', 'RSS MB', 'req/s by round'], rows), '');
    if (notes.length > 0) out.push('Not measured:', ...notes, '');
  }
  const pools = renderPgPools(report);
  if (pools) out.push(pools, '');
  const ratioRows: string[][] = [];
  for (const conns of Object.keys(report.cells)) {
    for (const scenario of Object.keys(report.cells[conns] ?? {}) as ScenarioKey[]) {
      const cells = (['full/off', 'full/floor'] as const).flatMap((ratio) => {
        const value = ratioOf(report, conns, scenario, ratio);
        const target = targets.find((t) => t.scenario === scenario && t.ratio === ratio);
        return [f(value, 2), target ? `≥ ${target.min} ${verdict(value, (v) => v >= target.min)}` : '—', f(ratioOf(report, conns, scenario, ratio, 'cpu'), 2)];
      });
      ratioRows.push([scenario, conns, ...cells]);
    }
  }
  out.push('### Ratios and targets\n');
  out.push('Targets are judged on req/s; "by CPU" is other ÷ full of (server + PostgreSQL) CPU ms per request.\n');
  out.push(table(['scen', 'conns', 'full/off', 'target', 'by CPU', 'full/floor', 'target', 'by CPU'], ratioRows), '');
  const rss = rssRatio(report);
  out.push(
    `RSS at the end: full ${f(report.rssEndMb.full, 0)} MB, off ${f(report.rssEndMb.off, 0)} MB, floor ${f(report.rssEndMb.floor, 0)} MB; ` +
      `full/off ${f(rss, 3)} (target ≤ ${RSS_TARGET}: ${verdict(rss, (v) => v <= RSS_TARGET)})${windowsRss(report)}`,
  );
  out.push('', spansLine(report));
  const audit = auditLine(report);
  if (audit) out.push('', audit);
  if (report.spanExport) out.push('', crossCheckLine(report.spanExport));
  const collector = collectorLine(report);
  if (collector) out.push('', collector);
  if (report.fixedRate) out.push('', renderFixedRate(report.fixedRate));
  if (report.exportStream) out.push('', renderExport(report.exportStream));
  return out.join('\n');
}

/**
 * PostgreSQL's CPU per request split by the pool of each backend (the policed
 * reads' and the other), each variant side by side; undefined when no cell has
 * the split (results before session 32).
 */
export function renderPgPools(report: Pick<Report, 'cells'>): string | undefined {
  const rows: string[][] = [];
  for (const [conns, byScenario] of Object.entries(report.cells)) {
    for (const [scenario, byVariant] of Object.entries(byScenario)) {
      const split = variants.map((v) => {
        const c = byVariant[v];
        return isFigures(c) ? (c.pgCpuMsPerRequestByPool ?? null) : null;
      });
      if (split.every((x) => x === null)) continue;
      rows.push([scenario, conns, ...split.flatMap((x) => (x ? [f(x.reads, 3), f(x.other, 3)] : ['n/a', 'n/a']))]);
    }
  }
  if (rows.length === 0) return undefined;
  return [
    '### PostgreSQL CPU by pool (ms per request)\n',
    "Each server's backends by the pool they belong to (their application name, `…-reads` for the policed reads'): " +
      "the policed reads, and the other statements (custos's audit appends, principal lookups and the audit index's merges). " +
      "Full's other pool is what strict audit costs PostgreSQL.\n",
    table(['scen', 'conns', ...variants.flatMap((v) => [`${v} reads`, `${v} other`])], rows),
  ].join('\n');
}

/** One variant of one scenario at its fixed rate, rounds aggregated as in the throughput tables. */
interface FixedRateFigures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** Every round achieved its rate within RATE_TOLERANCE. */
  held: boolean;
  /** Each round's p99, in round order: the spread the median hides. */
  p99ByRound: number[];
  /** p99 of the wait for a free connection (median over rounds), part of the latency; null from results that did not measure it. */
  connectionWaitP99: number | null;
  /** The server's event-loop delay, p99 (median over rounds) and max (over rounds), ms; null for the floor and older results. */
  loopDelay: LoopDelay | null;
  /** Per request, ms waited for a CPU by the server's main thread and by its PostgreSQL backends (median over rounds); null for older results. */
  runQueueWait: RunQueueWait | null;
}

function fixedRateFigures(fr: FixedRate, scenario: ScenarioKey, variant: Variant): FixedRateFigures | null {
  const ms = fr.measurements.filter((m) => m.scenario === scenario && m.variant === variant);
  if (ms.length === 0) return null;
  const held = ms.every((m) => m.rate !== undefined && Math.abs(m.load.rps - m.rate) <= RATE_TOLERANCE * m.rate);
  const { rps, p50, p99, errors } = figuresOf(ms);
  const p99ByRound = [...ms].sort((a, b) => a.round - b.round).map((m) => m.load.p99);
  const waits = ms.map((m) => m.load.connectionWait?.p99);
  const connectionWaitP99 = waits.every((w): w is number => typeof w === 'number') ? median(waits) : null;
  const delays = ms.map((m) => m.loopDelayMs);
  const loopDelay = delays.every((d): d is LoopDelay => Boolean(d))
    ? { p99Ms: median(delays.map((d) => d.p99Ms)), maxMs: Math.max(...delays.map((d) => d.maxMs)) }
    : null;
  const cpuWaits = ms.map((m) => (m.runQueueWaitMs && m.load.requests > 0 ? { server: m.runQueueWaitMs.server / m.load.requests, postgres: m.runQueueWaitMs.postgres / m.load.requests } : null));
  const runQueueWait = cpuWaits.every((w): w is RunQueueWait => w !== null)
    ? { server: median(cpuWaits.map((w) => w.server)), postgres: median(cpuWaits.map((w) => w.postgres)) }
    : null;
  return { rps, p50, p99, errors, held, p99ByRound, connectionWaitP99, loopDelay, runQueueWait };
}

/** p99 of full over off's at the fixed rate; null when either is missing or zero. */
function fixedRateRatio(fr: FixedRate, scenario: ScenarioKey): number | null {
  const full = fixedRateFigures(fr, scenario, 'full');
  const off = fixedRateFigures(fr, scenario, 'off');
  return full && off && off.p99 > 0 ? full.p99 / off.p99 : null;
}

/** Full's span timings at the fixed rate, each quantile the median over the rounds whose spans arrived; null when none did. */
function insideFigures(
  fr: FixedRate,
  scenario: ScenarioKey,
): { requests: number; serverMs: Quantiles; auditWaitMs: Quantiles | null; auditFlushMs: Quantiles | null; sqlMs: Quantiles | null } | null {
  const inside = fr.measurements.filter((m) => m.scenario === scenario && m.variant === 'full').map((m) => m.inside).filter((t): t is SpanTimings => Boolean(t));
  if (inside.length === 0) return null;
  const med = (qs: Array<Quantiles | null>): Quantiles | null => {
    const known = qs.filter((q): q is Quantiles => q !== null);
    return known.length === 0 ? null : { p50: median(known.map((q) => q.p50)), p99: median(known.map((q) => q.p99)) };
  };
  return {
    requests: sum(inside.map((t) => t.requests)),
    serverMs: med(inside.map((t) => t.serverMs))!,
    auditWaitMs: med(inside.map((t) => t.auditWaitMs)),
    auditFlushMs: med(inside.map((t) => t.auditFlushMs)),
    sqlMs: med(inside.map((t) => t.sqlMs)),
  };
}

/** Where full's latency at the fixed rate goes, from its own spans; undefined when no full window's spans were kept. */
function renderInside(fr: FixedRate): string | undefined {
  const rows: string[][] = [];
  for (const scenario of Object.keys(fr.rates) as ScenarioKey[]) {
    const inside = insideFigures(fr, scenario);
    if (!inside) continue;
    const full = fixedRateFigures(fr, scenario, 'full');
    rows.push([
      scenario, String(inside.requests), f(full?.p99), f(full?.connectionWaitP99), f(inside.serverMs.p50), f(inside.serverMs.p99),
      f(inside.auditWaitMs?.p50), f(inside.auditWaitMs?.p99), f(inside.auditFlushMs?.p50), f(inside.auditFlushMs?.p99), f(inside.sqlMs?.p50), f(inside.sqlMs?.p99),
    ]);
  }
  if (rows.length === 0) return undefined;
  return [
    "Where full's time goes at that rate (median over rounds): the client's p99 and, part of it, the p99 of its wait for one of the " +
      'connections to come free (every one still waiting for an earlier reply); then, from the spans full exported for the requests that started in each window, ' +
      'the server\'s time per request (its operation span, from the parsed body to the end of the reply), of it the wait for the audit group commit ' +
      '(`custos.audit.commit_ms`) and, of that, the write of its group from statement sent to commit answered (`custos.audit.flush_ms`; the rest is its turn ' +
      'behind the group ahead), and each policed statement from sent to answered (`db.query`). Quantiles of different spans do not add up.\n',
    table(
      ['scen', 'requests', 'client p99', 'connection wait p99', 'server p50', 'server p99', 'audit wait p50', 'audit wait p99', 'audit write p50', 'audit write p99', 'SQL p50', 'SQL p99'],
      rows,
    ),
  ].join('\n');
}

function renderFixedRate(fr: FixedRate): string {
  const rows: string[][] = [];
  const achieved: string[] = [];
  for (const [scenario, rate] of Object.entries(fr.rates) as Array<[ScenarioKey, number]>) {
    const full = fixedRateFigures(fr, scenario, 'full');
    const off = fixedRateFigures(fr, scenario, 'off');
    const p99 = (c: FixedRateFigures | null) => `${f(c?.p99)}${c && !c.held ? ' (rate not held)' : ''}`;
    const ratio = fixedRateRatio(fr, scenario);
    // A p99 taken at another rate than the other variant's compares nothing.
    const target = full?.held && off?.held ? `≤ ${P99_TARGET} ${verdict(ratio, (v) => v <= P99_TARGET)}` : 'n/a (rate not held)';
    const byRound = (c: FixedRateFigures | null) => (c ? c.p99ByRound.map((v) => f(v)).join(', ') : f(undefined));
    rows.push([scenario, String(rate), f(full?.p50), p99(full), f(off?.p50), p99(off), f(ratio, 2), target, ...(fr.rounds > 1 ? [`${byRound(full)} / ${byRound(off)}`] : [])]);
    const waited = (c: FixedRateFigures | null) => (c && c.connectionWaitP99 !== null ? `, waited for a connection p99 ${f(c.connectionWaitP99)} ms` : '');
    const late = (c: FixedRateFigures | null) => (c?.loopDelay ? `, event loop late p99 ${f(c.loopDelay.p99Ms)} ms (max ${f(c.loopDelay.maxMs)})` : '');
    const cpu = (c: FixedRateFigures | null) =>
      c?.runQueueWait ? `, waited for a CPU ${f(c.runQueueWait.server, 2)} ms per request (its PostgreSQL backends ${f(c.runQueueWait.postgres, 2)})` : '';
    const one = (v: Variant, c: FixedRateFigures | null) => `${v} ${f(c?.rps, 0)} req/s, ${c?.errors ?? 'n/a'} errors${waited(c)}${late(c)}${cpu(c)}`;
    achieved.push(`${scenario} ${one('full', full)}; ${one('off', off)}`);
  }
  const out = [
    `### Fixed rate (p99, ${fr.connections} connections)\n`,
    `Full and off at the same rate: half the req/s of the slower of the two in the ${fr.connections}-connection table, requests evenly spaced over at most ` +
      `${fr.connections} connections; ${fr.warmupSec} s warm-up + ${fr.durationSec} s measured, ${fr.rounds} round(s) interleaved full → off. ` +
      'Latencies in ms (median over rounds) from sending to the end of the reply, a wait for a free connection included. ' +
      'Under the table, per variant: the rate achieved, errors, the p99 of the wait for a free connection, and how late the server\'s event loop ran ' +
      'its 10 ms timer (p99, median over rounds; max over rounds): a loop held by one task holds every request ready meanwhile; and how long, per request, ' +
      'the server\'s main thread and its PostgreSQL backends were ready to run but waited for one of the machine\'s cores (/proc/<pid>/schedstat). ' +
      `"rate not held": a round achieved more than ${RATE_TOLERANCE * 100} % away from the rate.\n`,
  ];
  const header = ['scen', 'rate req/s', 'full p50', 'full p99', 'off p50', 'off p99', 'p99 full/off', 'target', ...(fr.rounds > 1 ? ['p99 by round, full / off'] : [])];
  if (rows.length > 0) out.push(table(header, rows), '', `Achieved: ${achieved.join(' · ')}`);
  const inside = renderInside(fr);
  if (inside) out.push('', inside);
  const skipped = Object.entries(fr.skipped);
  if (skipped.length > 0) out.push('', 'Not measured:', ...skipped.map(([scenario, why]) => `- ${scenario}: ${why}`));
  return out.join('\n');
}

/** Full's figures by scenario (`S1@16` when several connection counts ran), in report order. */
function fullFigures(report: Pick<Report, 'cells'>): Array<[string, Figures]> {
  const many = Object.keys(report.cells).length > 1;
  const out: Array<[string, Figures]> = [];
  for (const [conns, byScenario] of Object.entries(report.cells)) {
    for (const [scenario, byVariant] of Object.entries(byScenario)) {
      const full = byVariant.full;
      if (isFigures(full)) out.push([many ? `${scenario}@${conns}` : scenario, full]);
    }
  }
  return out;
}

/** Spans per request of full by scenario. */
function fullSpans(report: Report): Array<[string, number]> {
  return fullFigures(report).flatMap(([key, full]): Array<[string, number]> => (full.spansPerRequest === null ? [] : [[key, full.spansPerRequest]]));
}

/** Dropped spans of the whole run (warm-ups and priming included), read at the end; null when not read. */
const runDropped = (report: Report) => report.spanExport?.custos.dropped ?? null;

function spansLine(report: Report): string {
  const spans = fullSpans(report);
  const values = spans.map(([, v]) => v);
  const oneRead = spans.filter(([k]) => k.startsWith('S1') || k.startsWith('S3')).map(([, v]) => v);
  const spread = oneRead.length > 0 ? Math.max(...oneRead) - Math.min(...oneRead) : null;
  const highest = values.length > 0 ? Math.max(...values) : null;
  const constant = oneRead.length > 1 ? `spread ${f(spread, 2)}, ${verdict(spread, (v) => v <= SPANS_TARGET.spread)}` : 'n/a (needs S1 and S3)';
  const dropped = runDropped(report);
  return (
    `Spans per request (full): ${spans.map(([k, v]) => `${k} ${f(v, 2)}`).join(', ') || 'n/a'} ` +
    `(target ≤ ${SPANS_TARGET.max}: ${verdict(highest, (v) => v <= SPANS_TARGET.max)}; constant in the rows, S1 (50 rows) against S3 (1 row): ${constant}); ` +
    `spans dropped: ${dropped ?? 'n/a'} over the whole run (target 0: ${verdict(dropped, (v) => v === 0)})`
  );
}

/** Audit records per request of full, and per group commit (the batch the group commit made), by scenario. */
function auditLine(report: Report): string | undefined {
  const parts = fullFigures(report)
    .filter(([, full]) => full.auditPerRequest != null)
    .map(([key, full]) => `${key} ${f(full.auditPerRequest, 2)} (${f(full.auditPerCommit, 1)} per commit)`);
  return parts.length > 0 ? `Audit records per request (full): ${parts.join(', ')}` : undefined;
}

function crossCheckLine({ custos, sink }: SpanExport): string {
  const match = custos.pending === 0 && sink.refused === 0 && sink.spans === custos.exported;
  return (
    `Span export at the end: the sink received ${sink.spans} spans in ${sink.batches} batches (${sink.refused} refused); ` +
    `custos counts ${custos.exported} exported, ${custos.failed} failed, ${custos.dropped} dropped, ${custos.pending} pending: ` +
    `${match ? 'match' : 'MISMATCH'}`
  );
}

/**
 * What the bench's own process spent while full ran as fast as it answers: the stand-in collector taking full's spans
 * in (off and floor send none), on the cores the server under test shares. Deployed, a collector runs on cores of its
 * own, so this is CPU that full's windows lost here and off's did not. Undefined when no full window measured it.
 */
export function collectorLine(report: Pick<Report, 'cells'>): string | undefined {
  const parts = fullFigures(report)
    .filter(([, full]) => full.benchCpu)
    .map(([key, full]) => `${key} ${f(full.benchCpu!.msPerRequest, 3)} ms per request (${f(full.benchCpu!.pctOfCore, 1)} % of a core)`);
  return parts.length > 0 ? `Stand-in collector (the bench's own process) during full's windows: ${parts.join(', ')}` : undefined;
}

/**
 * RSS at the end of every window run as fast as the server answers, mean and peak of full and off: one
 * sample at the end moves with where each heap stands in its GC cycle (off 207 and 245 MB in two runs of
 * one day), the mean over the windows much less. Empty when either variant has no such window.
 */
function windowsRss(report: Report): string {
  const of = (v: Variant) => report.measurements.filter((m) => m.variant === v && m.rate === undefined).map((m) => m.rssMb);
  const full = of('full');
  const off = of('off');
  if (full.length === 0 || off.length === 0) return '';
  const mean = (xs: number[]) => sum(xs) / xs.length;
  return `; at the end of each window, mean full ${f(mean(full), 0)} / off ${f(mean(off), 0)} MB (${f(mean(full) / mean(off), 2)}), ` +
    `peak ${f(Math.max(...full), 0)} / ${f(Math.max(...off), 0)} MB (${f(Math.max(...full) / Math.max(...off), 2)})`;
}

function rssRatio(report: Report): number | null {
  const { full, off } = report.rssEndMb;
  return full && off ? full / off : null;
}

const round = (x: number | null | undefined, d: number) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(d)));

/** Per scenario measured at a fixed rate: the rate, p99 of full and off, and their ratio. */
function fixedRateSummary(fr: FixedRate): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [scenario, rate] of Object.entries(fr.rates) as Array<[ScenarioKey, number]>) {
    const figures = { full: fixedRateFigures(fr, scenario, 'full'), off: fixedRateFigures(fr, scenario, 'off') };
    const both = (pick: (c: FixedRateFigures | null) => number | null | undefined) => ({ full: round(pick(figures.full), 1), off: round(pick(figures.off), 1) });
    const inside = insideFigures(fr, scenario);
    out[scenario] = {
      rate, p99ms: both((c) => c?.p99), 'full/off': round(fixedRateRatio(fr, scenario), 2),
      connectionWaitP99ms: both((c) => c?.connectionWaitP99),
      loopDelayP99ms: both((c) => c?.loopDelay?.p99Ms),
      ...(inside ? { fullInsideP99ms: { server: round(inside.serverMs.p99, 1), auditWait: round(inside.auditWaitMs?.p99, 1), auditFlush: round(inside.auditFlushMs?.p99, 1), sql: round(inside.sqlMs?.p99, 1) } } : {}),
    };
  }
  return out;
}

/** The one-line summary: ratios, statements per request, throughput and p99 per scenario; full's spans and audit records per request and the run's dropped spans; the fixed-rate p99 of full and off. */
export function summaryLine(report: Report): Record<string, unknown> {
  const line: Record<string, Record<string, unknown>> = { ratios: {}, sqlPerRequest: {}, rps: {}, p99ms: {}, spansPerRequest: {}, auditRecordsPerRequest: {} };
  const many = Object.keys(report.cells).length > 1;
  for (const [conns, byScenario] of Object.entries(report.cells)) {
    for (const [scenario, byVariant] of Object.entries(byScenario) as Array<[ScenarioKey, Partial<Record<Variant, Cell>>]>) {
      const key = many ? `${scenario}@${conns}` : scenario;
      const ratio = (r: Ratio, by: 'rps' | 'cpu' = 'rps') => round(ratioOf(report, conns, scenario, r, by), 2);
      line.ratios![key] = { 'full/off': ratio('full/off'), 'full/floor': ratio('full/floor'), 'full/off cpu': ratio('full/off', 'cpu'), 'full/floor cpu': ratio('full/floor', 'cpu') };
      const full = byVariant.full;
      line.sqlPerRequest![key] = isFigures(full) ? round(full.sqlPerRequest, 2) : null;
      line.spansPerRequest![key] = isFigures(full) ? round(full.spansPerRequest, 2) : null;
      line.auditRecordsPerRequest![key] = isFigures(full) ? round(full.auditPerRequest, 2) : null;
      const pick = (g: (c: Figures) => number, d: number) =>
        Object.fromEntries(variants.map((v) => { const c = byVariant[v]; return [v, isFigures(c) ? round(g(c), d) : null]; }));
      line.rps![key] = pick((c) => c.rps, 0);
      line.p99ms![key] = pick((c) => c.p99, 1);
    }
  }
  if (report.fixedRate) line.fixedRate = fixedRateSummary(report.fixedRate);
  if (report.exportStream) line.export = exportSummary(report.exportStream);
  return { ...line, spansDropped: runDropped(report) };
}

interface RunMeta {
  started: string;
  /** --compare: the checkout whose custos (as deployed) ran in the off slot. */
  compare?: { dir: string; commit: string };
  /** --switch-off: the off slot ran full's configuration with these switches off (none: development mode alone). */
  switchOff?: Switch[];
  /** --full-db-param: PostgreSQL settings of full's connections only. */
  fullDbParams?: Record<string, string>;
  /** --full-node-flag: flags on full's node command line only. */
  fullNodeFlags?: string[];
  mode: string;
  elapsedSec: number;
  seedSec: number;
  commit: string;
  node: string;
  /** NODE_OPTIONS of the three servers: the image's (Dockerfile). */
  nodeOptions: string;
  /** Flags on the three servers' node command lines: those of the image's CMD (absent in reports before session 21). */
  nodeFlags?: string[];
  cpu: string;
  loadavgStart: number[];
  loadavgEnd: number[];
  /** auditTrail: at the run's start (absent from results written before session 22). */
  dataset: { database: string; customers: number; orders: number; auditTrail?: { records: number; mb: number } };
  windows: { warmupSec: number; durationSec: number; rounds: number };
}

/** An audit trail's size as the run found it: "~231.2k records, 461 MB". */
export function describeTrail(trail: { records: number; mb: number }): string {
  return `~${describeCount(trail.records)} records, ${describeMb(trail.mb)}`;
}

/** A size in MB as read: "3.52 GB" from 1 GB up, else "412 MB". */
function describeMb(mb: number): string {
  return mb >= 1024 ? `${(mb / 1024).toFixed(2)} GB` : `${Math.round(mb)} MB`;
}

/** 1234567 → "1.23M", 45600 → "45.6k", 950 → "950". */
function describeCount(n: number): string {
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return String(Math.round(n));
}

/** The header of a report: when, on what, under which load. */
export function describeRun(m: RunMeta): string {
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  const { database, customers, orders, auditTrail } = m.dataset;
  return [
    `# custos benchmark — ${m.started} (${m.mode})`,
    '',
    `commit ${m.commit} · node ${m.node}, custos compiled by tsc as the image runs it (NODE_OPTIONS ${m.nodeOptions}${m.nodeFlags?.length ? `, node ${m.nodeFlags.join(' ')}` : ''}: the image's, with the old-generation limit Node sets in the base Deployment's container) · ${m.cpu} · load average ${la(m.loadavgStart)} at start, ${la(m.loadavgEnd)} at end`,
    `dataset ${database}: ${customers} customers, ${orders} orders${m.seedSec ? ` (seeded in this run: ${m.seedSec} s)` : ' (reused)'}` +
      (auditTrail ? `; its audit trail at the start ${describeTrail(auditTrail)} (each run adds to it)` : ''),
    `windows: ${m.windows.warmupSec} s warm-up + ${m.windows.durationSec} s measured, ${m.windows.rounds} round(s) interleaved full → off → floor; run took ${m.elapsedSec} s`,
    ...(m.compare
      ? [
          '',
          `**A/B run: "off" below is custos as deployed from ${m.compare.dir} (commit ${m.compare.commit}), not the off switch.** ` +
            'full/off reads "this checkout against that one"; the targets and verdicts about full/off do not apply to this run.',
        ]
      : []),
    ...(m.switchOff
      ? [
          '',
          `**Switch-off run: "off" below is full with ${describeSwitchOff(m.switchOff)}, not the off variant** ` +
            '(development mode with graphql-js in its production mode, as for off: production refuses the audit and tracing switches). ' +
            'full/off reads "the price of what was switched off"; the targets and verdicts about full/off do not apply to this run.',
        ]
      : []),
    ...(m.fullDbParams ? [`full's PostgreSQL connections only: ${Object.entries(m.fullDbParams).map(([k, v]) => `${k} = ${v}`).join(', ')}`] : []),
    ...(m.fullNodeFlags ? [`full's node command line only: ${m.fullNodeFlags.join(' ')}`] : []),
  ].join('\n');
}

/**
 * `name`, or `name-2`, `name-3`, … : the first under which no file with any of
 * `extensions` exists in `dir`. A second run on the same day never overwrites
 * the first's results (a kept result is what later runs are compared with).
 */
export function unusedResultName(dir: string, name: string, extensions: readonly string[]): string {
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? name : `${name}-${n}`;
    if (!extensions.some((ext) => existsSync(join(dir, `${candidate}${ext}`)))) return candidate;
  }
}

/** Writes bench/results/<name>.json and .md (under the next free name, see unusedResultName); returns the Markdown path. */
export function writeResults(report: Report, wanted: string, preamble: string, appendix = ''): string {
  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const name = unusedResultName(dir, wanted, ['.json', '.md']);
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ ...report, summary: summaryLine(report) }, null, 2)}\n`);
  const md = join(dir, `${name}.md`);
  writeFileSync(md, `${preamble}\n\n${renderTables(report)}\n${appendix ? `\n${appendix}\n` : ''}`);
  return md;
}
