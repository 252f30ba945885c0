import { ROOT_CONTEXT, SpanStatusCode, trace, type Attributes, type Tracer } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BasicTracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CountedBatchProcessor, EXPORT_DELAY_MS, EXPORT_SLICE_BYTES, EXPORT_SLICE_SPANS, MAX_SLICES_IN_FLIGHT, otlpJsonBytes, slicesOf } from './span-queue.js';

/** An exporter that holds every batch until released, then accepts at once: a collector that was down and is back. */
class StuckExporter implements SpanExporter {
  held: Array<[number, (r: ExportResult) => void]> = [];
  private up = false;
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    if (this.up) return done({ code: ExportResultCode.SUCCESS });
    this.held.push([spans.length, done]);
  }
  /** Accepts what it holds and, from now on, whatever comes (slices still on their way arrive later). */
  release(): void {
    this.up = true;
    for (const [, done] of this.held.splice(0)) done({ code: ExportResultCode.SUCCESS });
  }
  shutdown(): Promise<void> {
    return Promise.resolve();
  }
}

describe(CountedBatchProcessor.name, () => {
  it('counts every span it cannot queue instead of dropping it silently', async () => {
    const exporter = new StuckExporter();
    const queue = new CountedBatchProcessor(exporter, 4);
    const tracer = new BasicTracerProvider({ spanProcessors: [queue] }).getTracer('t');
    for (let i = 0; i < 10; i++) tracer.startSpan(`s${i}`).end();
    expect(queue.stats()).toMatchObject({ pending: 4, dropped: 6 });
    const flushed = queue.forceFlush();
    await new Promise((r) => setTimeout(r, 10));
    exporter.release();
    await flushed;
    expect(queue.stats()).toMatchObject({ pending: 0, exported: 4, dropped: 6 });
  });

  it('drops nothing while the exporter keeps up', async () => {
    const exporter = new StuckExporter();
    const queue = new CountedBatchProcessor(exporter, 100);
    const tracer = new BasicTracerProvider({ spanProcessors: [queue] }).getTracer('t');
    for (let i = 0; i < 50; i++) tracer.startSpan(`s${i}`).end();
    const flushed = queue.forceFlush();
    await new Promise((r) => setTimeout(r, 10));
    exporter.release();
    await flushed;
    expect(queue.stats()).toMatchObject({ exported: 50, dropped: 0, pending: 0 });
  });

  describe('a few spans, far from a full batch', () => {
    afterEach(() => vi.useRealTimers());

    it(`go to the exporter ${EXPORT_DELAY_MS} ms after the first of them ended, not later`, async () => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate'] });
      const batches: number[][] = [];
      const exporter: SpanExporter = {
        export(spans, done) {
          batches.push(spans.map((s) => Number(s.name.slice(1))));
          done({ code: ExportResultCode.SUCCESS });
        },
        shutdown: () => Promise.resolve(),
      };
      const queue = new CountedBatchProcessor(exporter);
      const tracer = new BasicTracerProvider({ spanProcessors: [queue] }).getTracer('t');
      tracer.startSpan('s0').end();
      await vi.advanceTimersByTimeAsync(EXPORT_DELAY_MS / 2);
      tracer.startSpan('s1').end();
      await vi.advanceTimersByTimeAsync(EXPORT_DELAY_MS / 2 - 1);
      expect(batches).toEqual([]);
      // One batch with both: the delay runs from the first span queued, so none waits longer than it.
      // The timer fires at EXPORT_DELAY_MS and the slice leaves on the next event-loop turn.
      await vi.advanceTimersByTimeAsync(2);
      expect(batches).toEqual([[0, 1]]);
      tracer.startSpan('s2').end();
      await vi.advanceTimersByTimeAsync(EXPORT_DELAY_MS - 1);
      expect(batches).toEqual([[0, 1]]);
      await vi.advanceTimersByTimeAsync(2);
      expect(batches).toEqual([[0, 1], [2]]);
      expect(queue.stats()).toEqual({ exported: 3, failed: 0, dropped: 0, pending: 0 });
    });
  });

  it('hands a large batch to the exporter in slices, one event-loop turn apart, and counts a failed slice as failed', async () => {
    // Counts event-loop turns: re-queued from the check phase, it runs once per turn.
    let turns = 0;
    const tick = () => {
      turns += 1;
      if (turns < 50) setImmediate(tick);
    };
    const calls: Array<{ size: number; turn: number }> = [];
    const exporter: SpanExporter = {
      export(spans, done) {
        calls.push({ size: spans.length, turn: turns });
        // The second slice fails (a collector refusing it); the others are accepted.
        done({ code: calls.length === 2 ? ExportResultCode.FAILED : ExportResultCode.SUCCESS });
      },
      shutdown: () => Promise.resolve(),
    };
    const queue = new CountedBatchProcessor(exporter);
    const tracer = new BasicTracerProvider({ spanProcessors: [queue] }).getTracer('t');
    // Spans of a tenth of a slice each (by the estimate): ten to a slice, 25 in all.
    const padding = 'x'.repeat(EXPORT_SLICE_BYTES / 10 - 400);
    for (let i = 0; i < 25; i++) tracer.startSpan(`s${i}`, { attributes: { padding } }).end();
    // Below the SDK's batch size: nothing goes out before the flush, which exports them as one batch.
    expect(calls).toEqual([]);
    setImmediate(tick);
    await expect(queue.forceFlush()).rejects.toThrow();
    expect(calls.map((c) => c.size)).toEqual([10, 10, 5]);
    expect(calls[1]!.turn).toBeGreaterThan(calls[0]!.turn);
    expect(calls[2]!.turn).toBeGreaterThan(calls[1]!.turn);
    expect(queue.stats()).toMatchObject({ exported: 15, failed: 10, pending: 0, dropped: 0 });
  });

  it('never puts more than its bytes or its count of spans in a slice, fills each before the next, and keeps the order', () => {
    const tracer = new BasicTracerProvider().getTracer('t');
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.nat(2_000), fc.nat(40_000), fc.constant(EXPORT_SLICE_BYTES + 1)), { maxLength: 600 }), (sizes) => {
        const spans = sizes.map((chars, i) => endedSpan(tracer, { name: `s${i}`, attributes: { padding: 'x'.repeat(chars) } }));
        const slices = slicesOf(spans);
        expect(slices.flat()).toEqual(spans);
        const bytes = (slice: ReadableSpan[]) => slice.reduce((n, span) => n + otlpJsonBytes(span), 0);
        slices.forEach((slice, i) => {
          expect(slice.length).toBeGreaterThan(0);
          expect(slice.length).toBeLessThanOrEqual(EXPORT_SLICE_SPANS);
          // Over the bytes only as a span too large for any slice, alone in its own.
          if (bytes(slice) > EXPORT_SLICE_BYTES) expect(slice).toHaveLength(1);
          // Each slice was cut only because the next span did not fit (or the count was reached).
          const next = slices[i + 1];
          if (next && slice.length < EXPORT_SLICE_SPANS) expect(bytes(slice) + otlpJsonBytes(next[0]!)).toBeGreaterThan(EXPORT_SLICE_BYTES);
        });
      }),
      { numRuns: 60 },
    );
  });

  it(`puts no more than ${EXPORT_SLICE_SPANS} spans in a slice, however small they are`, () => {
    const tracer = new BasicTracerProvider().getTracer('t');
    const spans = Array.from({ length: 2 * EXPORT_SLICE_SPANS + 88 }, (_, i) => endedSpan(tracer, { name: `s${i}` }));
    // Far below the bytes: the count alone cuts them.
    expect(spans.reduce((n, span) => n + otlpJsonBytes(span), 0)).toBeLessThan(EXPORT_SLICE_BYTES * 2);
    expect(slicesOf(spans).map((slice) => slice.length)).toEqual([EXPORT_SLICE_SPANS, EXPORT_SLICE_SPANS, 88]);
  });

  it('delivers a full queue on flush through the OTLP exporter, never more slices at once than it accepts', async () => {
    const collector = await startCollector(20);
    try {
      const queue = new CountedBatchProcessor(new OTLPTraceExporter({ url: collector.url }));
      const tracer = new BasicTracerProvider({ spanProcessors: [queue] }).getTracer('t');
      // Four to a slice, and far more slices than the exporter lets through at once (30): before the cap, most of them failed.
      const padding = 'x'.repeat(EXPORT_SLICE_BYTES / 4 - 400);
      const spans = 40 * 4;
      for (let i = 0; i < spans; i++) tracer.startSpan(`s${i}`, { attributes: { padding } }).end();
      await queue.forceFlush();
      expect(queue.stats()).toEqual({ exported: spans, failed: 0, dropped: 0, pending: 0 });
      expect(collector.received()).toBe(spans);
      expect(collector.mostOpen()).toBeLessThanOrEqual(MAX_SLICES_IN_FLIGHT);
      // Each POST stays below the 128 kB where V8 and malloc hand out fresh pages.
      expect(collector.bodies).toHaveLength(40);
      for (const bytes of collector.bodies) expect(bytes).toBeLessThan(128 * 1024);
    } finally {
      await collector.close();
    }
  });

  it('estimates what a span adds to an OTLP/JSON export close to what the exporter sends', async () => {
    const collector = await startCollector(0);
    const exporter = new OTLPTraceExporter({ url: collector.url });
    const tracer = new BasicTracerProvider().getTracer('custos');
    const exported = (spans: ReadableSpan[]) =>
      new Promise<number>((resolve, reject) => {
        const before = collector.bodies.length;
        exporter.export(spans, (result) => (result.code === ExportResultCode.SUCCESS ? resolve(collector.bodies[before]!) : reject(result.error ?? new Error('export failed'))));
      });
    // What custos puts in attributes: ids, names, codes and SQL, whose identifiers are quoted (escaped in JSON).
    const text = fc.stringMatching(/^[a-z0-9_.:\- ]{0,60}$/);
    const identifier = fc.stringMatching(/^[a-z_]{3,30}$/).map((name) => `"${name}"`);
    const sqlText = fc.array(fc.oneof(text, identifier), { maxLength: 80 }).map((parts) => parts.join(' '));
    // Numbers are counts and milliseconds to a tenth.
    const count = fc.nat(100_000);
    const value = fc.oneof(text, sqlText, count, count.map((n) => n / 10), fc.boolean(), fc.array(text, { maxLength: 200 }), fc.array(count, { maxLength: 20 }));
    const spanSpec = fc.record({
      name: fc.stringMatching(/^[a-z.]{1,30}$/),
      attributes: fc.dictionary(fc.stringMatching(/^[a-z._]{1,40}$/), value, { maxKeys: 16 }),
      error: fc.option(text, { nil: undefined }),
      child: fc.boolean(),
    });
    try {
      // A batch of one bare span measures the request's own framing (resource and scope), taken off every batch below.
      const bare = endedSpan(tracer, { name: 'x' });
      const framing = (await exported([bare])) - otlpJsonBytes(bare);
      await fc.assert(
        fc.asyncProperty(fc.array(spanSpec, { minLength: 1, maxLength: 20 }), async (specs) => {
          const spans = specs.map((spec) => endedSpan(tracer, spec));
          const estimate = spans.reduce((n, span) => n + otlpJsonBytes(span), 0);
          const actual = (await exported(spans)) - framing;
          // Never far below (a slice should stay under 128 kB: its budget leaves room for this), never far above (slices stay full).
          expect(actual).toBeLessThanOrEqual(estimate * 1.3);
          expect(estimate).toBeLessThanOrEqual(actual * 1.1 + 40 * spans.length);
        }),
        { numRuns: 60 },
      );
    } finally {
      await exporter.shutdown();
      await collector.close();
    }
  });
});

type Spec = { name: string; attributes?: Attributes; error?: string | undefined; child?: boolean };

/** An ended span made from a spec: its attributes, an error status with a message, a parent. */
function endedSpan(tracer: Tracer, spec: Spec): ReadableSpan {
  const parent = spec.child === true ? trace.setSpan(ROOT_CONTEXT, tracer.startSpan('parent')) : ROOT_CONTEXT;
  const span = tracer.startSpan(spec.name, { attributes: spec.attributes }, parent);
  if (spec.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: spec.error });
  span.end();
  return span as unknown as ReadableSpan;
}

/** A collector on a free port that answers each POST `delayMs` late, keeping each body's length and counting spans and POSTs open at once. */
async function startCollector(delayMs: number) {
  let received = 0;
  let open = 0;
  let mostOpen = 0;
  const bodies: number[] = [];
  const server = createServer((req, res) => {
    open += 1;
    mostOpen = Math.max(mostOpen, open);
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      bodies.push(raw.length);
      const body = JSON.parse(raw.toString('utf8')) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: unknown[] }> }> };
      for (const r of body.resourceSpans) for (const s of r.scopeSpans) received += s.spans.length;
      setTimeout(() => {
        open -= 1;
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      }, delayMs);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1/traces`,
    bodies,
    received: () => received,
    mostOpen: () => mostOpen,
    close: () =>
      new Promise<void>((r) => {
        // The exporter keeps its connection open for the next POST.
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
