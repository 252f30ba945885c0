/**
 * A stand-in OpenTelemetry collector for the benchmark: the full variant
 * exports its spans here, as it would to a collector when deployed, so the
 * export's cost is in full's figures and the spans it sends can be counted.
 *
 * @opentelemetry/exporter-trace-otlp-http (0.223) posts OTLP/JSON
 * (`content-type: application/json`, uncompressed unless
 * OTEL_EXPORTER_OTLP_COMPRESSION=gzip), so a span is an element of
 * resourceSpans[].scopeSpans[].spans. Any other encoding (protobuf) is
 * answered 415 and counted as refused: the exporter then reports those spans
 * as failed instead of the sink miscounting them.
 *
 * Inside a watched time range (`watch`) it also keeps, of each span that
 * started there, what it says about where a request's time went: the
 * operation span's duration (the server's time for the request, from its
 * parsed body to the end of its reply), the audit commit wait custos puts on
 * it, and each `db.query` span's duration. `timings` summarizes them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { nearestRank } from './quantile.js';

const gunzipAsync = promisify(gunzip);

export interface SinkCounts {
  /** Spans in the batches answered 200. */
  spans: number;
  /** Batches answered 200. */
  batches: number;
  /** Requests answered with an error (wrong path, encoding or body). */
  refused: number;
}

/** Median and 99th percentile, ms. */
export interface Quantiles {
  p50: number;
  p99: number;
}

/** What full's spans say about the requests that started in a time range. */
export interface SpanTimings {
  /** Operation spans (requests) that started in the range. */
  requests: number;
  /** Their durations: the server's time per request, the audit commit wait included. */
  serverMs: Quantiles;
  /** `custos.audit.commit_ms` of those that wrote audit records: the wait for their group commit. */
  auditWaitMs: Quantiles | null;
  /** `custos.audit.flush_ms` of the same: of that wait, the write of their group (sent to commit answered). */
  auditFlushMs: Quantiles | null;
  /** Durations of the `db.query` spans that started in the range (each policed statement, sent to answered). */
  sqlMs: Quantiles | null;
}

export interface OtlpSink {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (custos appends /v1/traces). */
  url: string;
  counts(): SinkCounts;
  /** Keeps the timings of spans that start in [fromMs, toMs) (epoch ms), from the batches that arrive from now on. */
  watch(fromMs: number, toMs: number): void;
  /** The kept timings of spans that started in [fromMs, toMs); null when no operation span did. */
  timings(fromMs: number, toMs: number): SpanTimings | null;
  /** Stops listening and cuts kept-alive connections; safe to call twice. */
  close(): Promise<void>;
}

/** The parts of an OTLP/JSON span the sink reads (int64 fields may come as strings or numbers). */
interface OtlpSpan {
  name?: string;
  startTimeUnixNano?: string | number;
  endTimeUnixNano?: string | number;
  attributes?: Array<{ key?: string; value?: { intValue?: string | number; doubleValue?: number } }>;
}

interface ExportTraceRequest {
  resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: OtlpSpan[] }> }>;
}

/** custos's names (src/telemetry/names.ts), repeated here: the sink reads spans as any collector would. */
const OPERATION_SPAN = 'graphql.operation';
const SQL_SPAN = 'db.query';
const AUDIT_WAIT_ATTR = 'custos.audit.commit_ms';
const AUDIT_FLUSH_ATTR = 'custos.audit.flush_ms';

/** An OTLP int64 nanosecond time (a decimal string, or a JSON number); null when it is neither. */
function nanos(value: string | number | undefined): bigint | null {
  if (typeof value === 'string') return /^\d{1,20}$/.test(value) ? BigInt(value) : null;
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 ? BigInt(value) : null;
}

/** A JSON number this large has already been rounded (to 256 ns at today's epoch nanoseconds): a "reversed" span by less is zero-length. */
const NUMBER_ROUNDING_NS = 1000n;

/** Start (epoch ms) and duration (ms, taken in integer nanoseconds) of a span; null when its times are missing, malformed or reversed. */
function timesOf(span: OtlpSpan): { startMs: number; durationMs: number } | null {
  const start = nanos(span.startTimeUnixNano);
  let end = nanos(span.endTimeUnixNano);
  if (start === null || end === null) return null;
  if (end < start) {
    const rounded = typeof span.startTimeUnixNano === 'number' || typeof span.endTimeUnixNano === 'number';
    if (!rounded || start - end > NUMBER_ROUNDING_NS) return null;
    end = start;
  }
  return { startMs: Number(start / 1000n) / 1000, durationMs: Number(end - start) / 1e6 };
}

function numberAttribute(span: OtlpSpan, key: string): number | null {
  const value = span.attributes?.find((a) => a.key === key)?.value;
  const n = Number(value?.doubleValue ?? value?.intValue);
  return value && Number.isFinite(n) ? n : null;
}

/** Timings kept while watching, in arrival order. */
interface Kept {
  operations: Array<{ startMs: number; durationMs: number; auditWaitMs: number | null; auditFlushMs: number | null }>;
  statements: Array<{ startMs: number; durationMs: number }>;
}

/** Counts the spans of an export; keeps the timings of those that `watched` says started in a watched range. */
function readExport(body: ExportTraceRequest, watched: (startMs: number) => boolean, kept: Kept): number {
  let count = 0;
  for (const resource of body.resourceSpans ?? []) {
    for (const scope of resource.scopeSpans ?? []) {
      const spans = scope.spans ?? [];
      count += spans.length;
      for (const span of spans) {
        if (span.name !== OPERATION_SPAN && span.name !== SQL_SPAN) continue;
        const times = timesOf(span);
        if (!times || !watched(times.startMs)) continue;
        if (span.name === SQL_SPAN) kept.statements.push(times);
        else kept.operations.push({ ...times, auditWaitMs: numberAttribute(span, AUDIT_WAIT_ATTR), auditFlushMs: numberAttribute(span, AUDIT_FLUSH_ATTR) });
      }
    }
  }
  return count;
}

function quantiles(values: number[]): Quantiles | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: nearestRank(sorted, 0.5), p99: nearestRank(sorted, 0.99) };
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipAsync(raw) : raw;
}

/** The span count of an OTLP/JSON trace export (its watched timings kept), or an HTTP status explaining why it is not one. */
async function countExport(req: IncomingMessage, watched: (startMs: number) => boolean, kept: Kept): Promise<{ spans: number } | { status: number }> {
  if (req.method !== 'POST' || req.url !== '/v1/traces') return { status: 404 };
  if (!String(req.headers['content-type']).startsWith('application/json')) return { status: 415 };
  let body: ExportTraceRequest;
  try {
    body = JSON.parse((await readBody(req)).toString('utf8')) as ExportTraceRequest;
  } catch {
    return { status: 400 };
  }
  // Kept only once the whole batch is read: a malformed one is refused whole, as the count is.
  const batch: Kept = { operations: [], statements: [] };
  const spans = readExport(body, watched, batch);
  kept.operations.push(...batch.operations);
  kept.statements.push(...batch.statements);
  return { spans };
}

/** Starts the sink on 127.0.0.1, on a port the system picks. */
export async function startOtlpSink(): Promise<OtlpSink> {
  const counts: SinkCounts = { spans: 0, batches: 0, refused: 0 };
  const ranges: Array<[number, number]> = [];
  const watched = (startMs: number) => ranges.some(([from, to]) => startMs >= from && startMs < to);
  const kept: Kept = { operations: [], statements: [] };
  const reply = (res: ServerResponse, status: number) => {
    // `{}` is a complete ExportTraceServiceResponse (no partial success): the exporter counts the batch as sent.
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(status === 200 ? '{}' : '{"error":"not an OTLP/JSON trace export"}');
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const result = await countExport(req, watched, kept);
    if ('status' in result) {
      counts.refused += 1;
      // A refused request's body is left unread: drain it so the connection can be reused.
      req.resume();
      return reply(res, result.status);
    }
    counts.spans += result.spans;
    counts.batches += 1;
    reply(res, 200);
  };
  // countExport turns every failure into a status, so the promise never rejects.
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  let closed: Promise<void> | undefined;
  return {
    url: `http://127.0.0.1:${port}`,
    counts: () => ({ ...counts }),
    watch: (fromMs, toMs) => void ranges.push([fromMs, toMs]),
    timings: (fromMs, toMs) => {
      const inRange = ({ startMs }: { startMs: number }) => startMs >= fromMs && startMs < toMs;
      const operations = kept.operations.filter(inRange);
      const server = quantiles(operations.map((o) => o.durationMs));
      if (!server) return null;
      return {
        requests: operations.length,
        serverMs: server,
        auditWaitMs: quantiles(operations.flatMap((o) => (o.auditWaitMs === null ? [] : [o.auditWaitMs]))),
        auditFlushMs: quantiles(operations.flatMap((o) => (o.auditFlushMs === null ? [] : [o.auditFlushMs]))),
        sqlMs: quantiles(kept.statements.filter(inRange).map((q) => q.durationMs)),
      };
    },
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
