import { defaultTextMapGetter, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context as OtelContext, type Span, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  BasicTracerProvider,
  SimpleSpanProcessor,
  type SpanExporter,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { createHmac } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { CountedBatchProcessor, type SpanQueueStats } from './span-queue.js';

const PSEUDONYM_CACHE = 1_000;

export interface TracingConfig {
  enabled: boolean;
  otlpEndpoint?: string | undefined;
  serviceName: string;
}

/**
 * One tracer provider per server instance (no global registration, so tests
 * can run several servers in one process). Spans are parented explicitly
 * through the request context rather than through a global context manager.
 */
export class Telemetry {
  readonly tracer: Tracer;
  private readonly queue: CountedBatchProcessor | undefined;
  private readonly provider: BasicTracerProvider | undefined;
  private readonly propagator = new W3CTraceContextPropagator();
  private readonly pseudonyms = new Map<string, string>();

  constructor(
    config: TracingConfig,
    opts: { exporter?: SpanExporter; pseudonymKey: Buffer },
    private readonly pseudonymKey = opts.pseudonymKey,
  ) {
    const processors: SpanProcessor[] = [];
    if (opts.exporter) processors.push(new SimpleSpanProcessor(opts.exporter));
    if (config.otlpEndpoint) {
      const exporter = new OTLPTraceExporter({ url: `${config.otlpEndpoint.replace(/\/$/, '')}/v1/traces` });
      // Bounded queue: a slow collector must not grow memory without limit; drops are counted.
      this.queue = new CountedBatchProcessor(exporter);
      processors.push(this.queue);
    }
    if (!config.enabled) {
      this.tracer = trace.getTracer('custos-disabled');
      return;
    }
    this.provider = new BasicTracerProvider({
      // Audit spans are never sampled away.
      sampler: new AlwaysOnSampler(),
      resource: resourceFromAttributes({ 'service.name': config.serviceName }),
      spanProcessors: processors,
    });
    this.tracer = this.provider.getTracer('custos');
  }

  /** The incoming W3C traceparent, if any, as the parent context of the operation span. */
  parentFrom(headers: IncomingHttpHeaders): OtelContext {
    const carrier: Record<string, string> = {};
    for (const key of ['traceparent', 'tracestate']) {
      const value = headers[key];
      if (typeof value === 'string') carrier[key] = value;
    }
    return this.propagator.extract(ROOT_CONTEXT, carrier, defaultTextMapGetter);
  }

  startOperation(parent: OtelContext): Span {
    return this.tracer.startSpan('graphql.operation', { kind: SpanKind.SERVER }, parent);
  }

  /** A child span of `parent`, ended by the caller in `finally`. */
  child(name: string, parent: Span | undefined, attributes: Record<string, string | number | boolean | string[]> = {}): Span {
    const ctx = parent ? trace.setSpan(ROOT_CONTEXT, parent) : ROOT_CONTEXT;
    return this.tracer.startSpan(name, { kind: SpanKind.INTERNAL, attributes }, ctx);
  }

  /** A stable pseudonym of a principal id for spans (keyed, so it cannot be reversed by guessing ids). */
  pseudonym(principalId: string): string {
    let pseudonym = this.pseudonyms.get(principalId);
    if (pseudonym === undefined) {
      pseudonym = createHmac('sha256', this.pseudonymKey).update(`principal:${principalId}`).digest('base64url').slice(0, 16);
      // Bounded: one HMAC per request saved for recent principals, never a growing map.
      if (this.pseudonyms.size >= PSEUDONYM_CACHE) this.pseudonyms.delete(this.pseudonyms.keys().next().value as string);
      this.pseudonyms.set(principalId, pseudonym);
    }
    return pseudonym;
  }

  /** Export queue counters (zeros when no collector is configured). */
  spanStats(): SpanQueueStats {
    return this.queue?.stats() ?? { exported: 0, failed: 0, dropped: 0, pending: 0 };
  }

  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }

  async flush(): Promise<void> {
    await this.provider?.forceFlush();
  }
}

/** Runs `fn` inside a span: ERROR status on throw, always ended. */
export async function inSpan<T>(span: Span, fn: (span: Span) => Promise<T>): Promise<T> {
  try {
    return await fn(span);
  } catch (e) {
    span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.name : 'error' });
    throw e;
  } finally {
    span.end();
  }
}
