import { ROOT_CONTEXT, SpanKind, trace } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { startOtlpSink, type OtlpSink } from '../bench/otlp-sink.js';

/** The benchmark's stand-in collector: counts spans, and keeps the timings of watched ones. */

let sink: OtlpSink | undefined;
afterEach(async () => {
  await sink?.close();
  sink = undefined;
});

const T0 = Date.UTC(2026, 10, 29, 12);
const ns = (ms: number) => (BigInt(Math.round(ms * 1000)) * 1000n).toString();

interface Fake {
  name: string;
  startMs: number;
  durationMs: number;
  auditWaitMs?: number;
  auditFlushMs?: number;
  /** Times as JSON numbers (which a double rounds to 256 ns), not the exporter's decimal strings. */
  numeric?: boolean;
}

/** An OTLP/JSON body as the exporter writes it (int64 as decimal strings; as numbers where asked, which protobuf's JSON mapping also accepts). */
function exportBody(spans: Fake[]): string {
  return JSON.stringify({
    resourceSpans: [
      {
        resource: { attributes: [{ key: 'service.name', value: { stringValue: 'custos' } }] },
        scopeSpans: [
          {
            scope: { name: 'custos' },
            spans: spans.map((s, i) => ({
              traceId: '0'.repeat(31) + (i % 10),
              spanId: '0'.repeat(15) + (i % 10),
              name: s.name,
              startTimeUnixNano: s.numeric ? Number(ns(s.startMs)) : ns(s.startMs),
              endTimeUnixNano: s.numeric ? Number(ns(s.startMs + s.durationMs)) : ns(s.startMs + s.durationMs),
              attributes: [
                ...(s.auditWaitMs === undefined ? [] : [{ key: 'custos.audit.commit_ms', value: { doubleValue: s.auditWaitMs } }]),
                ...(s.auditFlushMs === undefined ? [] : [{ key: 'custos.audit.flush_ms', value: { doubleValue: s.auditFlushMs } }]),
              ],
            })),
          },
        ],
      },
    ],
  });
}

const post = (url: string, body: string, type = 'application/json') =>
  fetch(`${url}/v1/traces`, { method: 'POST', headers: { 'content-type': type }, body }).then((r) => r.status);

/** Nearest-rank quantile, written out independently of the sink's. */
const nearestRank = (values: number[], q: number) => [...values].sort((a, b) => a - b)[Math.ceil(q * values.length) - 1];

describe('bench OTLP sink timings', () => {
  it('keeps only spans that start in a watched range, and summarizes only the range asked', async () => {
    sink = await startOtlpSink();
    sink.watch(T0, T0 + 1000);
    const spans: Fake[] = [
      { name: 'graphql.operation', startMs: T0 - 1, durationMs: 500 }, // before the range
      { name: 'graphql.operation', startMs: T0, durationMs: 4, auditWaitMs: 1.5, auditFlushMs: 0.5 },
      { name: 'graphql.operation', startMs: T0 + 10, durationMs: 6 }, // no audit records
      { name: 'db.query', startMs: T0 + 11, durationMs: 0.75 },
      { name: 'db.query', startMs: T0 + 12, durationMs: 0, numeric: true }, // rounded: never "reversed"
      { name: 'db.query', startMs: T0 + 13, durationMs: 2, numeric: true },
      { name: 'custos.enforce', startMs: T0 + 11, durationMs: 3 }, // not a timing the sink keeps
      { name: 'graphql.operation', startMs: T0 + 1000, durationMs: 700 }, // the range's end is excluded
    ];
    expect(await post(sink.url, exportBody(spans))).toBe(200);
    expect(sink.counts()).toEqual({ spans: 8, batches: 1, refused: 0 });
    const t = sink.timings(T0, T0 + 1000)!;
    expect(t).toMatchObject({ requests: 2, serverMs: { p50: 4, p99: 6 }, auditWaitMs: { p50: 1.5, p99: 1.5 }, auditFlushMs: { p50: 0.5, p99: 0.5 } });
    // Nearest rank of 0, 0.75 and 2 ms (the numbers within their rounding).
    expect(t.sqlMs!.p50).toBeCloseTo(0.75, 6);
    expect(t.sqlMs!.p99).toBeCloseTo(2, 3);
    // Kept, but outside the range asked for.
    expect(sink.timings(T0 + 5, T0 + 1000)?.requests).toBe(1);
    // Never watched: counted, not kept.
    expect(sink.timings(T0 - 10, T0)).toBeNull();
    expect(sink.timings(T0 + 1000, T0 + 2000)).toBeNull();
  });

  it('refuses a malformed or non-JSON export whole and keeps nothing of it', async () => {
    sink = await startOtlpSink();
    sink.watch(T0, T0 + 1000);
    const body = exportBody([{ name: 'graphql.operation', startMs: T0, durationMs: 4 }]);
    expect(await post(sink.url, body.slice(0, -5))).toBe(400);
    expect(await post(sink.url, body, 'application/x-protobuf')).toBe(415);
    expect(sink.counts()).toEqual({ spans: 0, batches: 0, refused: 2 });
    expect(sink.timings(T0, T0 + 1000)).toBeNull();
  });

  it('skips spans whose times are missing or run backwards, still counting them', async () => {
    sink = await startOtlpSink();
    sink.watch(0, Number.MAX_SAFE_INTEGER);
    const body = JSON.parse(exportBody([{ name: 'graphql.operation', startMs: T0, durationMs: 4 }])) as {
      resourceSpans: Array<{ scopeSpans: Array<{ spans: Array<Record<string, unknown>> }> }>;
    };
    const [good] = body.resourceSpans[0]!.scopeSpans[0]!.spans;
    body.resourceSpans[0]!.scopeSpans[0]!.spans.push(
      { ...good, startTimeUnixNano: undefined },
      { ...good, endTimeUnixNano: 'soon' },
      { ...good, endTimeUnixNano: ns(T0 - 1) },
      { ...good, endTimeUnixNano: Number(ns(T0 - 1)) },
    );
    expect(await post(sink.url, JSON.stringify(body))).toBe(200);
    expect(sink.counts().spans).toBe(5);
    expect(sink.timings(0, Number.MAX_SAFE_INTEGER)).toMatchObject({ requests: 1, serverMs: { p50: 4, p99: 4 } });
  });

  it('reports nearest-rank p50 and p99 of whatever durations arrive, over several batches', async () => {
    sink = await startOtlpSink();
    let base = T0;
    await fc.assert(
      fc.asyncProperty(fc.array(fc.integer({ min: 0, max: 100_000 }), { minLength: 1, maxLength: 300 }), fc.integer({ min: 1, max: 4 }), async (micros, batches) => {
        // A fresh range per run: earlier runs' spans stay kept but fall outside it.
        const from = (base += 10_000_000);
        sink!.watch(from, from + 1_000_000);
        const durations = micros.map((u) => u / 1000);
        const spans = durations.map((d, i): Fake => ({ name: 'graphql.operation', startMs: from + i, durationMs: d, auditWaitMs: d / 2, auditFlushMs: d / 8 }));
        const per = Math.ceil(spans.length / batches);
        for (let i = 0; i < spans.length; i += per) expect(await post(sink!.url, exportBody(spans.slice(i, i + per)))).toBe(200);
        const t = sink!.timings(from, from + 1_000_000)!;
        expect(t.requests).toBe(durations.length);
        // Times travel as integer nanoseconds since the epoch: a double holds them to a fraction of a microsecond.
        expect(t.serverMs.p50).toBeCloseTo(nearestRank(durations, 0.5)!, 3);
        expect(t.serverMs.p99).toBeCloseTo(nearestRank(durations, 0.99)!, 3);
        expect(t.auditWaitMs!.p99).toBeCloseTo(nearestRank(durations, 0.99)! / 2, 6);
        expect(t.auditFlushMs!.p50).toBeCloseTo(nearestRank(durations, 0.5)! / 8, 6);
        expect(t.auditFlushMs!.p99).toBeCloseTo(nearestRank(durations, 0.99)! / 8, 6);
        expect(t.sqlMs).toBeNull();
      }),
      { numRuns: 40 },
    );
  });

  it('reads what the OpenTelemetry OTLP/HTTP exporter custos uses actually sends', async () => {
    sink = await startOtlpSink();
    const from = Date.now() - 60_000;
    sink.watch(from, from + 120_000);
    const provider = new BasicTracerProvider({
      sampler: new AlwaysOnSampler(),
      resource: resourceFromAttributes({ 'service.name': 'custos' }),
      spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `${sink.url}/v1/traces` }))],
    });
    const tracer = provider.getTracer('custos');
    const start = from + 1000;
    const op = tracer.startSpan('graphql.operation', { kind: SpanKind.SERVER, startTime: start }, ROOT_CONTEXT);
    const query = tracer.startSpan('db.query', { startTime: start + 1 }, trace.setSpan(ROOT_CONTEXT, op));
    query.end(start + 3.5);
    op.setAttributes({ 'custos.audit.records': 1, 'custos.audit.commit_ms': 2.3, 'custos.audit.flush_ms': 0.9 });
    op.end(start + 8);
    await provider.forceFlush();
    await provider.shutdown();
    expect(sink.counts()).toMatchObject({ spans: 2, refused: 0 });
    const t = sink.timings(from, from + 120_000)!;
    expect(t.requests).toBe(1);
    expect(t.serverMs.p50).toBeCloseTo(8, 3);
    expect(t.auditWaitMs).toEqual({ p50: 2.3, p99: 2.3 });
    expect(t.auditFlushMs).toEqual({ p50: 0.9, p99: 0.9 });
    expect(t.sqlMs!.p99).toBeCloseTo(2.5, 3);
  });
});
