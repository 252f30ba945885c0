import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BasicTracerProvider, type ReadableSpan, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { CountedBatchProcessor } from './span-queue.js';

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
});
