import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { BasicTracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CountedBatchProcessor, EXPORT_DELAY_MS, EXPORT_SLICE, MAX_SLICES_IN_FLIGHT } from './span-queue.js';

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
    const queue = new CountedBatchProcessor(exporter, 4 * EXPORT_SLICE);
    const tracer = new BasicTracerProvider({ spanProcessors: [queue] }).getTracer('t');
    for (let i = 0; i < 2 * EXPORT_SLICE + 10; i++) tracer.startSpan(`s${i}`).end();
    // Below the SDK's batch size: nothing goes out before the flush, which exports them as one batch.
    expect(calls).toEqual([]);
    setImmediate(tick);
    await expect(queue.forceFlush()).rejects.toThrow();
    expect(calls.map((c) => c.size)).toEqual([EXPORT_SLICE, EXPORT_SLICE, 10]);
    expect(calls[1]!.turn).toBeGreaterThan(calls[0]!.turn);
    expect(calls[2]!.turn).toBeGreaterThan(calls[1]!.turn);
    expect(queue.stats()).toMatchObject({ exported: EXPORT_SLICE + 10, failed: EXPORT_SLICE, pending: 0, dropped: 0 });
  });

  it('delivers a full queue on flush through the OTLP exporter, never more slices at once than it accepts', async () => {
    // A collector that answers each POST 20 ms late, counting the spans it was sent and the POSTs open at once.
    let received = 0;
    let open = 0;
    let mostOpen = 0;
    const collector = createServer((req, res) => {
      open += 1;
      mostOpen = Math.max(mostOpen, open);
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { resourceSpans: Array<{ scopeSpans: Array<{ spans: unknown[] }> }> };
        for (const r of body.resourceSpans) for (const s of r.scopeSpans) received += s.spans.length;
        setTimeout(() => {
          open -= 1;
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        }, 20);
      });
    });
    await new Promise<void>((r) => collector.listen(0, '127.0.0.1', r));
    try {
      const { port } = collector.address() as AddressInfo;
      const queue = new CountedBatchProcessor(new OTLPTraceExporter({ url: `http://127.0.0.1:${port}/v1/traces` }));
      const tracer = new BasicTracerProvider({ spanProcessors: [queue] }).getTracer('t');
      // Far more slices than the exporter lets through at once (30): before the cap, most of them failed.
      const spans = 40 * EXPORT_SLICE;
      for (let i = 0; i < spans; i++) tracer.startSpan(`s${i}`).end();
      await queue.forceFlush();
      expect(queue.stats()).toEqual({ exported: spans, failed: 0, dropped: 0, pending: 0 });
      expect(received).toBe(spans);
      expect(mostOpen).toBeLessThanOrEqual(MAX_SLICES_IN_FLIGHT);
    } finally {
      collector.close();
    }
  });
});
