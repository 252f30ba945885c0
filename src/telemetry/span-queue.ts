import type { Attributes, Context } from '@opentelemetry/api';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanExporter, type SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface SpanQueueStats {
  exported: number;
  failed: number;
  dropped: number;
  pending: number;
}

/**
 * What one export call may carry: about this many bytes of OTLP/JSON (as
 * estimated by `otlpJsonBytes`), and never more than EXPORT_SLICE_SPANS
 * spans. The OTLP exporter turns a slice into JSON and starts its POST
 * synchronously, so a slice is also how long it holds the event loop. A
 * slice stays below V8's large-object size and malloc's mmap threshold (128 kB
 * each): larger ones were encoded into fresh pages, and the page faults made
 * the export of an S1 request cost 80–103 µs against 57–64 at 32 spans
 * (bench/HISTORY.md, "Measured in session 11"). Up to that size, fewer and
 * fuller POSTs cost less: 32 spans were ~79 kB of S1's but ~49 kB of S3's.
 * Exporting the spans of real requests through the OTLP exporter (session
 * 34, µs of CPU per request, 32 spans against this budget against 136 kB):
 * S3 24–26 / 19 / 22, S1 31–33 / 29–30 / 33–34, S2 62–63 / 60–61 / 61–62.
 */
export const EXPORT_SLICE_BYTES = 112 * 1024;

/** The most spans one export call carries, however small they are (each costs the transform its own objects). */
export const EXPORT_SLICE_SPANS = 256;

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
 * POSTs stays set by the slices' size at any load that fills a slice in
 * EXPORT_DELAY_MS; below that, at most ten a second go out.
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
 * The bytes a span adds to an OTLP/JSON export, estimated from its fields
 * without serializing it: the span's own fields (ids, times, kind, status,
 * ~340 bytes), then each attribute's key and value with the JSON around them
 * (an array's elements one by one), its events and links. Strings count one
 * byte per character and numbers six: custos's attributes are ids, names,
 * codes, SQL, counts and milliseconds, so what goes uncounted is the escape
 * before each quote around an identifier in SQL (real requests' spans came
 * within 2 % of the exporter's bytes, session 34).
 */
export function otlpJsonBytes(span: ReadableSpan): number {
  let bytes = 340 + span.name.length + attributesBytes(span.attributes);
  if (span.status.message !== undefined) bytes += 12 + span.status.message.length;
  for (const event of span.events) bytes += 80 + event.name.length + attributesBytes(event.attributes);
  for (const link of span.links) bytes += 120 + attributesBytes(link.attributes);
  return bytes;
}

function attributesBytes(attributes: Attributes | undefined): number {
  let bytes = 0;
  if (attributes === undefined) return bytes;
  for (const key in attributes) {
    const value = attributes[key];
    bytes += 37 + key.length;
    if (Array.isArray(value)) {
      bytes += 11;
      for (const item of value as unknown[]) bytes += 19 + valueBytes(item);
    } else bytes += valueBytes(value);
  }
  return bytes;
}

const valueBytes = (value: unknown): number => (typeof value === 'string' ? value.length : 6);

/** A batch cut into export slices, in order: each up to EXPORT_SLICE_BYTES (a span larger than that alone) and EXPORT_SLICE_SPANS. */
export function slicesOf(spans: ReadableSpan[]): ReadableSpan[][] {
  const slices: ReadableSpan[][] = [];
  let slice: ReadableSpan[] = [];
  let bytes = 0;
  for (const span of spans) {
    const size = otlpJsonBytes(span);
    if (slice.length > 0 && (bytes + size > EXPORT_SLICE_BYTES || slice.length === EXPORT_SLICE_SPANS)) {
      slices.push(slice);
      slice = [];
      bytes = 0;
    }
    slice.push(span);
    bytes += size;
  }
  if (slice.length > 0) slices.push(slice);
  return slices;
}

/**
 * Hands a batch to the exporter in slices (EXPORT_SLICE_BYTES, EXPORT_SLICE_SPANS), one per event-loop
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
    const slices = slicesOf(spans);
    let left = slices.length;
    if (left === 0) return resultCallback({ code: ExportResultCode.SUCCESS });
    let failure: ExportResult | undefined;
    for (const slice of slices) {
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
