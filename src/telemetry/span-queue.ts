import type { Context } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface SpanQueueStats {
  exported: number;
  failed: number;
  dropped: number;
  pending: number;
}

/**
 * Spans per export call. The OTLP exporter turns a batch into JSON and starts
 * its POST synchronously, ~20 µs per span of ours: a whole EXPORT_BATCH held
 * the event loop ~10 ms under load, in the tail of every request waiting
 * behind it. Slices go out one event-loop turn apart, each its own POST, and
 * small enough that their JSON (~2.4 kB per span of an S1 request, ~75 kB a
 * slice) stays below V8's large-object size and malloc's mmap threshold
 * (128 kB each): larger slices encoded into fresh pages, and the page faults
 * made the export of an S1 request cost 80–103 µs against 57–64 at 32
 * (bench/HISTORY.md, "Measured in session 11").
 */
export const EXPORT_SLICE = 32;

/** Spans the SDK's processor gathers before it exports without waiting for its timer. */
export const EXPORT_BATCH = 512;

/**
 * How long a finished span may wait for a batch to fill before it is
 * exported anyway (the SDK's `scheduledDelayMillis`; a full EXPORT_BATCH goes
 * at once). A span, its attributes and the record ids it carries stay
 * reachable until exported, so the delay is their lifetime whenever the
 * server is not busy enough to fill a batch first. At 1 s, spans outlived two
 * scavenges of V8's young generation and were copied into the old one, which
 * then had to be collected: work and pauses that grew with the time spans
 * waited, not with anything they carry. At 100 ms far fewer are promoted (a
 * soak at 200 requests a second: the old generation grew 1.9 against
 * 4.3 MB/s, scavenges took 2.7 against 3.9 ms; bench/README). The number of
 * POSTs stays set by EXPORT_SLICE at any load above ~300 spans a second;
 * below that, at most ten a second go out.
 */
export const EXPORT_DELAY_MS = 100;

/**
 * Slices in flight at once, across batches. The OTLP exporter refuses a slice
 * beyond its own limit (30) as failed ("Concurrent export limit reached"), and
 * a flush or shutdown hands over every queued batch at once: 8,192 spans made
 * 64 slices of 128, and most of them were lost that way.
 */
export const MAX_SLICES_IN_FLIGHT = 4;

/**
 * Hands a batch to the exporter in slices (EXPORT_SLICE), one per event-loop
 * turn and at most MAX_SLICES_IN_FLIGHT at a time (the rest wait their turn,
 * in order), and counts what each slice's export accepted or rejected, so the
 * queue knows what is still pending. The batch fails if any slice did.
 */
class SlicingCountingExporter implements SpanExporter {
  private inFlight = 0;
  private readonly waiting: Array<() => void> = [];
  private scheduled = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly done: (count: number, ok: boolean) => void,
  ) {}

  export(spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    let left = Math.ceil(spans.length / EXPORT_SLICE);
    if (left === 0) return resultCallback({ code: ExportResultCode.SUCCESS });
    let failure: ExportResult | undefined;
    for (let start = 0; start < spans.length; start += EXPORT_SLICE) {
      const slice = spans.slice(start, start + EXPORT_SLICE);
      this.waiting.push(() =>
        this.inner.export(slice, (result) => {
          const ok = result.code === ExportResultCode.SUCCESS;
          this.done(slice.length, ok);
          if (!ok) failure ??= result;
          this.inFlight -= 1;
          this.schedule();
          left -= 1;
          if (left === 0) resultCallback(failure ?? { code: ExportResultCode.SUCCESS });
        }),
      );
    }
    this.schedule();
  }

  /** Sends the next waiting slice on the next event-loop turn, if one may go out. */
  private schedule(): void {
    if (this.scheduled || this.waiting.length === 0 || this.inFlight >= MAX_SLICES_IN_FLIGHT) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      const send = this.waiting.shift();
      if (!send) return;
      this.inFlight += 1;
      send();
      this.schedule();
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
    const counting = new SlicingCountingExporter(exporter, (count, ok) => {
      this.counts.pending -= count;
      if (ok) this.counts.exported += count;
      else this.counts.failed += count;
    });
    this.inner = new BatchSpanProcessor(counting, { maxQueueSize: limit, maxExportBatchSize: EXPORT_BATCH, scheduledDelayMillis: EXPORT_DELAY_MS });
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
