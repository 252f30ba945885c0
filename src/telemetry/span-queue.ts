import type { Context } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface SpanQueueStats {
  exported: number;
  failed: number;
  dropped: number;
  pending: number;
}

/** Counts what the exporter accepted or rejected, so the queue knows what is still pending. */
class CountingExporter implements SpanExporter {
  constructor(
    private readonly inner: SpanExporter,
    private readonly done: (count: number, ok: boolean) => void,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      this.done(spans.length, result.code === ExportResultCode.SUCCESS);
      resultCallback(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * A BatchSpanProcessor whose drops are counted. The SDK's processor drops
 * silently when its queue is full; this one refuses a span itself before that
 * can happen (pending includes the batch being exported), so every lost span
 * shows in `stats().dropped` and in /metrics.
 */
export class CountedBatchProcessor implements SpanProcessor {
  private readonly inner: BatchSpanProcessor;
  private readonly counts: SpanQueueStats = { exported: 0, failed: 0, dropped: 0, pending: 0 };

  constructor(
    exporter: SpanExporter,
    private readonly limit = 8192,
  ) {
    const counting = new CountingExporter(exporter, (count, ok) => {
      this.counts.pending -= count;
      if (ok) this.counts.exported += count;
      else this.counts.failed += count;
    });
    this.inner = new BatchSpanProcessor(counting, { maxQueueSize: limit, maxExportBatchSize: 512, scheduledDelayMillis: 1000 });
  }

  onStart(span: Span, parentContext: Context): void {
    this.inner.onStart(span, parentContext);
  }

  onEnd(span: ReadableSpan): void {
    if (this.counts.pending >= this.limit) {
      this.counts.dropped += 1;
      return;
    }
    this.counts.pending += 1;
    this.inner.onEnd(span);
  }

  stats(): SpanQueueStats {
    return { ...this.counts };
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}
