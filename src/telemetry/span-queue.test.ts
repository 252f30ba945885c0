import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { CountedBatchProcessor, EXPORT_SLICE } from './span-queue.js';

/** An exporter that holds every batch until released: a collector that is down or slow. */
class StuckExporter implements SpanExporter {
  held: Array<[number, (r: ExportResult) => void]> = [];
  export(spans: ReadableSpan[], done: (r: ExportResult) => void): void {
    this.held.push([spans.length, done]);
  }
  release(): void {
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
});
