/**
 * The export measurement: on the benchmark database, the analyst asks for a
 * customer_profile export, the dpo approves it, and the whole grant is pulled
 * from GET /exports/<id>/rows of the full server, twice: as one stream (no
 * `limit`) and in pages of the CLI's default size. The client reads and
 * discards; the figures are rows/s and the server's peak resident memory
 * while it streams (a bounded export keeps it flat whatever the row count).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { ServerHandle } from './servers.js';

/** `npm run export`'s default --page. */
export const EXPORT_PAGE = 5_000;
const DATASET = 'customer_profile';

export interface ExportPass {
  mode: 'stream' | 'pages';
  rows: number;
  bytes: number;
  seconds: number;
  rowsPerSec: number;
  requests: number;
  /** Server VmRSS just before the pass, and its peak during it (VmHWM after a reset, else sampled VmRSS). */
  rssBeforeMb: number;
  peakRssMb: number;
}

export interface ExportFigures {
  dataset: string;
  /** Released by the dataset's plan (analytics consent, k-anonymity), and withheld. */
  released: number;
  suppressed: number;
  passes: ExportPass[];
}

export type ExportResult = ExportFigures | { na: string };

async function gql<T>(url: string, token: string, query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const res = await fetch(`${url}/graphql`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { data?: T; errors?: Array<{ message: string; extensions?: { code?: string } }> };
  const error = body.errors?.[0];
  if (error || !body.data) throw new Error(`${error?.extensions?.code ?? `HTTP ${res.status}`} ${error?.message ?? ''}`.trim());
  return body.data;
}

/** A grant of `rowLimit` rows of the dataset for the analyst, approved by the dpo. */
async function approvedGrant(url: string, tokens: { analyst: string; dpo: string }, rowLimit: number): Promise<string> {
  const input = { dataset: DATASET, purpose: 'ANALYTICS', rowLimit, reason: 'benchmark: export stream throughput' };
  const asked = await gql<{ requestExport: { id: string } }>(url, tokens.analyst, 'mutation ($input: RequestExportInput!) { requestExport(input: $input) { id } }', { input });
  const id = asked.requestExport.id;
  await gql(url, tokens.dpo, 'mutation ($id: ID!, $n: Int) { approveExport(id: $id, expiresInHours: 1, rowLimit: $n) { id } }', { id, n: rowLimit });
  return id;
}

const statusKb = (pid: number, key: 'VmRSS' | 'VmHWM') => {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) : NaN;
};

/** Peak resident memory of `pid` while `work` runs: VmHWM reset first (clear_refs 5) and sampled VmRSS as a floor. */
async function peakRss<T>(pid: number, work: () => Promise<T>): Promise<{ result: T; beforeMb: number; peakMb: number }> {
  const beforeKb = statusKb(pid, 'VmRSS');
  let reset = true;
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    reset = false;
  }
  let sampled = beforeKb;
  const timer = setInterval(() => (sampled = Math.max(sampled, statusKb(pid, 'VmRSS'))), 20);
  try {
    const result = await work();
    const peakKb = Math.max(sampled, statusKb(pid, 'VmRSS'), reset ? statusKb(pid, 'VmHWM') : 0);
    return { result, beforeMb: beforeKb / 1024, peakMb: peakKb / 1024 };
  } finally {
    clearInterval(timer);
  }
}

/** Reads a response body to the end, counting newline-terminated rows; keeps nothing. */
async function drain(res: Response): Promise<{ rows: number; bytes: number }> {
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${(await res.text()).slice(0, 200)}`);
  let rows = 0;
  let bytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    bytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) rows++;
  }
  return { rows, bytes };
}

async function pass(server: ServerHandle, token: string, grant: string, mode: ExportPass['mode']): Promise<ExportPass> {
  const headers = { authorization: `Bearer ${token}` };
  const started = performance.now();
  const { result, beforeMb, peakMb } = await peakRss(server.pid, async () => {
    if (mode === 'stream') return { ...(await drain(await fetch(`${server.url}/exports/${grant}/rows?format=ndjson`, { headers }))), requests: 1 };
    let rows = 0;
    let bytes = 0;
    let requests = 0;
    let after: string | null = null;
    do {
      const url = `${server.url}/exports/${grant}/rows?format=ndjson&limit=${EXPORT_PAGE}${after ? `&after=${after}` : ''}`;
      const res = await fetch(url, { headers });
      after = res.headers.get('x-export-next');
      const page = await drain(res);
      rows += page.rows;
      bytes += page.bytes;
      requests++;
    } while (after);
    return { rows, bytes, requests };
  });
  const seconds = (performance.now() - started) / 1000;
  return { mode, ...result, seconds, rowsPerSec: result.rows / seconds, rssBeforeMb: beforeMb, peakRssMb: peakMb };
}

/** Both passes over fresh grants of the whole dataset; a failure is reported as n/a, never fails the run. */
export async function measureExport(opts: { server: ServerHandle; customers: number; tokens: { analyst: string; dpo: string } }): Promise<ExportResult> {
  try {
    const { tokens } = opts;
    const url = opts.server.url;
    type Meta = { dataset: { totalCount: number; suppressed: number } };
    const meta = await gql<Meta>(url, tokens.analyst, 'query ($name: String!) { dataset(name: $name, first: 1) { totalCount suppressed } }', { name: DATASET });
    const { totalCount: released, suppressed } = meta.dataset;
    const passes: ExportPass[] = [];
    for (const mode of ['stream', 'pages'] as const) {
      const grant = await approvedGrant(url, tokens, Math.max(1, opts.customers));
      const result = await pass(opts.server, tokens.analyst, grant, mode);
      if (result.rows !== released) throw new Error(`${mode}: ${result.rows} rows arrived, the dataset releases ${released}`);
      passes.push(result);
    }
    return { dataset: DATASET, released, suppressed, passes };
  } catch (error) {
    return { na: `n/a (${(error as Error).message})` };
  }
}

const f = (x: number, digits = 0) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a');

/** The "Export stream" section of the report. */
export function renderExport(result: ExportResult | undefined): string {
  if (!result) return '';
  if ('na' in result) return `### Export stream\n\n${result.na}\n`;
  const rows = result.passes.map((p) => [
    p.mode === 'stream' ? 'stream (no limit)' : `pages of ${EXPORT_PAGE}`, String(p.rows), String(p.requests), f(p.bytes / 1e6, 1), f(p.seconds, 1), f(p.rowsPerSec), f(p.rssBeforeMb), f(p.peakRssMb),
  ]);
  const headers = ['mode', 'rows', 'requests', 'MB', 's', 'rows/s', 'server RSS before MB', 'server peak RSS MB'];
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    '### Export stream\n',
    `${result.dataset} as u-analyst-1 through an approved grant (full variant): ${result.released} rows released (analytics consent, k-anonymous), ${result.suppressed} suppressed.\n`,
    line(headers),
    `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
    ...rows.map(line),
    '',
  ].join('\n');
}

/** The `export` key of the run's last JSON line: the whole-stream pass (nulls when it was not measured). */
export function exportSummary(result: ExportResult): { rowsPerSec: number | null; peakRssMb: number | null; rows: number | null } {
  const stream = 'na' in result ? undefined : result.passes.find((p) => p.mode === 'stream');
  return stream ? { rowsPerSec: Math.round(stream.rowsPerSec), peakRssMb: Math.round(stream.peakRssMb), rows: stream.rows } : { rowsPerSec: null, peakRssMb: null, rows: null };
}
