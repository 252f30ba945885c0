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
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';

const gunzipAsync = promisify(gunzip);

export interface SinkCounts {
  /** Spans in the batches answered 200. */
  spans: number;
  /** Batches answered 200. */
  batches: number;
  /** Requests answered with an error (wrong path, encoding or body). */
  refused: number;
}

export interface OtlpSink {
  /** Base URL for OTEL_EXPORTER_OTLP_ENDPOINT (custos appends /v1/traces). */
  url: string;
  counts(): SinkCounts;
  /** Stops listening and cuts kept-alive connections; safe to call twice. */
  close(): Promise<void>;
}

interface ExportTraceRequest {
  resourceSpans?: Array<{ scopeSpans?: Array<{ spans?: unknown[] }> }>;
}

function spansIn(body: ExportTraceRequest): number {
  let count = 0;
  for (const resource of body.resourceSpans ?? []) {
    for (const scope of resource.scopeSpans ?? []) count += scope.spans?.length ?? 0;
  }
  return count;
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const raw = Buffer.concat(chunks);
  return req.headers['content-encoding'] === 'gzip' ? gunzipAsync(raw) : raw;
}

/** The span count of an OTLP/JSON trace export, or an HTTP status explaining why it is not one. */
async function countExport(req: IncomingMessage): Promise<{ spans: number } | { status: number }> {
  if (req.method !== 'POST' || req.url !== '/v1/traces') return { status: 404 };
  if (!String(req.headers['content-type']).startsWith('application/json')) return { status: 415 };
  try {
    return { spans: spansIn(JSON.parse((await readBody(req)).toString('utf8')) as ExportTraceRequest) };
  } catch {
    return { status: 400 };
  }
}

/** Starts the sink on 127.0.0.1, on a port the system picks. */
export async function startOtlpSink(): Promise<OtlpSink> {
  const counts: SinkCounts = { spans: 0, batches: 0, refused: 0 };
  const reply = (res: ServerResponse, status: number) => {
    // `{}` is a complete ExportTraceServiceResponse (no partial success): the exporter counts the batch as sent.
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(status === 200 ? '{}' : '{"error":"not an OTLP/JSON trace export"}');
  };
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const result = await countExport(req);
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
    close: () =>
      (closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      })),
  };
}
