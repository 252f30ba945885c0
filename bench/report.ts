/**
 * Turns measured windows into the figures of the report: per scenario and
 * variant (rounds aggregated), the ratios against the targets, a Markdown
 * table for the terminal and bench/results/, and the JSON record.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportSummary, renderExport, type ExportResult } from './export-stream.js';
import type { LoadResult } from './load-worker.js';
import type { ScenarioKey } from './scenarios.js';
import { repoRoot, variants, type Variant } from './servers.js';

export interface Measurement {
  scenario: ScenarioKey;
  variant: Variant;
  connections: number;
  round: number;
  load: LoadResult;
  /** Statements sent during the window (null: the server exposes no counter). */
  statements: number | null;
  serverCpuMs: number;
  postgresCpuMs: number;
  loadgenCpuMs: number;
  rssMb: number;
}

export interface Figures {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  requests: number;
  sqlPerRequest: number | null;
  cpuMsPerRequest: number;
  pgCpuMsPerRequest: number;
  loadgenCpuPct: number;
  rssMb: number;
  roundsRps: number[];
}

/** A cell that was not measured, and why. */
export type Cell = Figures | { na: string };
export const isFigures = (c: Cell | undefined): c is Figures => c !== undefined && !('na' in c);

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

export function figuresOf(ms: Measurement[]): Figures {
  const requests = sum(ms.map((m) => m.load.requests));
  const per = (total: number) => (requests > 0 ? total / requests : NaN);
  const statements = ms.map((m) => m.statements);
  const seconds = sum(ms.map((m) => m.load.durationSec));
  return {
    rps: sum(ms.map((m) => m.load.rps)) / ms.length,
    p50: median(ms.map((m) => m.load.p50)),
    p99: median(ms.map((m) => m.load.p99)),
    errors: sum(ms.map((m) => m.load.non2xx + m.load.transportErrors + m.load.graphqlErrors)),
    requests,
    sqlPerRequest: statements.every((s): s is number => s !== null) ? per(sum(statements)) : null,
    cpuMsPerRequest: per(sum(ms.map((m) => m.serverCpuMs))),
    pgCpuMsPerRequest: per(sum(ms.map((m) => m.postgresCpuMs))),
    loadgenCpuPct: seconds > 0 ? sum(ms.map((m) => m.loadgenCpuMs)) / seconds / 10 : NaN,
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

export interface Report {
  meta: Record<string, unknown>;
  /** connections → scenario → variant → cell */
  cells: Record<string, Partial<Record<ScenarioKey, Partial<Record<Variant, Cell>>>>>;
  /** End-of-run resident memory of each server. */
  rssEndMb: Partial<Record<Variant, number>>;
  measurements: Measurement[];
  /** The export stream and pages (bench/export-stream.ts); absent when not run. */
  exportStream?: ExportResult;
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
const verdict = (value: number | null, ok: (v: number) => boolean) => (value === null ? 'n/a' : ok(value) ? 'met' : 'MISSED');

function table(headers: string[], rows: string[][]): string {
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
          rows.push([scenario, variant, 'n/a', '', '', '', '', '', '', '', '']);
          notes.push(`- ${scenario} ${variant}: ${c.na}`);
          continue;
        }
        rows.push([
          scenario, variant, f(c.rps, 0), f(c.p50), f(c.p99), String(c.errors), f(c.sqlPerRequest, 2),
          f(c.cpuMsPerRequest, 2), f(c.pgCpuMsPerRequest, 2), f(c.rssMb, 0), c.roundsRps.map((r) => r.toFixed(0)).join(' / '),
        ]);
      }
    }
    out.push(`### ${conns} connections\n`);
    out.push(table(['scen', 'variant', 'req/s', 'p50 ms', 'p99 ms', 'errors', 'SQL/req', 'CPU ms/req', 'PG CPU ms/req', 'RSS MB', 'req/s by round'], rows), '');
    if (notes.length > 0) out.push('Not measured:', ...notes, '');
  }
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
      `full/off ${f(rss, 2)} (target ≤ ${RSS_TARGET}: ${verdict(rss, (v) => v <= RSS_TARGET)})`,
  );
  if (report.exportStream) out.push('', renderExport(report.exportStream));
  return out.join('\n');
}

function rssRatio(report: Report): number | null {
  const { full, off } = report.rssEndMb;
  return full && off ? full / off : null;
}

/** The one-line summary: ratios, statements per request, throughput and p99 per scenario. */
export function summaryLine(report: Report): Record<string, Record<string, unknown>> {
  const line: Record<string, Record<string, unknown>> = { ratios: {}, sqlPerRequest: {}, rps: {}, p99ms: {} };
  const many = Object.keys(report.cells).length > 1;
  const round = (x: number | null | undefined, d: number) => (x === null || x === undefined || Number.isNaN(x) ? null : Number(x.toFixed(d)));
  for (const [conns, byScenario] of Object.entries(report.cells)) {
    for (const [scenario, byVariant] of Object.entries(byScenario) as Array<[ScenarioKey, Partial<Record<Variant, Cell>>]>) {
      const key = many ? `${scenario}@${conns}` : scenario;
      const ratio = (r: Ratio, by: 'rps' | 'cpu' = 'rps') => round(ratioOf(report, conns, scenario, r, by), 2);
      line.ratios![key] = { 'full/off': ratio('full/off'), 'full/floor': ratio('full/floor'), 'full/off cpu': ratio('full/off', 'cpu'), 'full/floor cpu': ratio('full/floor', 'cpu') };
      const full = byVariant.full;
      line.sqlPerRequest![key] = isFigures(full) ? round(full.sqlPerRequest, 2) : null;
      const pick = (g: (c: Figures) => number, d: number) =>
        Object.fromEntries(variants.map((v) => { const c = byVariant[v]; return [v, isFigures(c) ? round(g(c), d) : null]; }));
      line.rps![key] = pick((c) => c.rps, 0);
      line.p99ms![key] = pick((c) => c.p99, 1);
    }
  }
  if (report.exportStream) line.export = exportSummary(report.exportStream);
  return line;
}

interface RunMeta {
  started: string;
  mode: string;
  elapsedSec: number;
  seedSec: number;
  commit: string;
  node: string;
  cpu: string;
  loadavgStart: number[];
  loadavgEnd: number[];
  dataset: { database: string; customers: number; orders: number };
  windows: { warmupSec: number; durationSec: number; rounds: number };
}

/** The header of a report: when, on what, under which load. */
export function describeRun(m: RunMeta): string {
  const la = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
  const { database, customers, orders } = m.dataset;
  return [
    `# custos benchmark — ${m.started} (${m.mode})`,
    '',
    `commit ${m.commit} · node ${m.node} · ${m.cpu} · load average ${la(m.loadavgStart)} at start, ${la(m.loadavgEnd)} at end`,
    `dataset ${database}: ${customers} customers, ${orders} orders${m.seedSec ? ` (seeded in this run: ${m.seedSec} s)` : ' (reused)'}`,
    `windows: ${m.windows.warmupSec} s warm-up + ${m.windows.durationSec} s measured, ${m.windows.rounds} round(s) interleaved full → off → floor; run took ${m.elapsedSec} s`,
  ].join('\n');
}

/** Writes bench/results/<name>.json and .md; returns the Markdown path. */
export function writeResults(report: Report, name: string, preamble: string): string {
  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, `${name}.json`), `${JSON.stringify({ ...report, summary: summaryLine(report) }, null, 2)}\n`);
  const md = join(dir, `${name}.md`);
  writeFileSync(md, `${preamble}\n\n${renderTables(report)}\n`);
  return md;
}
