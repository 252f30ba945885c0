import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

/** A stand-in OpenTelemetry collector: records what arrives on /v1/traces. */
let collector: Server;
const received: Array<{ path: string; type: string; body: Buffer }> = [];
let server: TestServer;

/** The OTLP/JSON body the exporter posts (it sends JSON, not protobuf). */
interface ExportRequest {
  resourceSpans: Array<{ scopeSpans: Array<{ spans: unknown[] }> }>;
}
const spanCount = (body: ExportRequest) => body.resourceSpans.reduce((n, r) => n + r.scopeSpans.reduce((m, s) => m + s.spans.length, 0), 0);

beforeAll(async () => {
  collector = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ path: req.url ?? '', type: String(req.headers['content-type']), body: Buffer.concat(chunks) });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
  const port = (collector.address() as { port: number }).port;
  server = await startTestServer({ customers: 20, env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${port}` } });
});

afterAll(async () => {
  await new Promise<void>((resolve) => collector.close(() => resolve()));
});

describe('OTLP export', () => {
  it('sends the request’s spans to the collector, batched, with no personal value', async () => {
    const res = await gql(server, 'u-rep-1', '{ customers(first: 5) { edges { node { id email phone(purpose: CONTACT) } } } }');
    expect(res.json.errors).toBeUndefined();
    const metrics = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
    for (const name of ['custos_spans_exported_total', 'custos_spans_failed_total', 'custos_spans_dropped_total', 'custos_spans_pending']) {
      expect(metrics).toMatch(new RegExp(`^${name} \\d+$`, 'm'));
    }
    // Stopping flushes the batch queue.
    await server.stop();
    const traces = received.filter((r) => r.path === '/v1/traces');
    expect(traces.length).toBeGreaterThan(0);
    const payload = Buffer.concat(traces.map((t) => t.body));
    expect(payload.includes(Buffer.from('custos.enforce'))).toBe(true);
    expect(payload.includes(Buffer.from(res.json.extensions.traceId, 'hex')) || payload.includes(Buffer.from(res.json.extensions.traceId))).toBe(true);
    for (const c of server.customers) {
      for (const value of [c.phone, c.email, c.name, c.idNumber, c.address]) {
        if (value) expect(payload.includes(Buffer.from(value))).toBe(false);
      }
    }
    // Every span the queue counts as exported reached the collector, and nothing is left behind.
    const spans = traces.reduce((n, t) => n + spanCount(JSON.parse(t.body.toString('utf8')) as ExportRequest), 0);
    expect(server.running.telemetry.spanStats()).toEqual({ exported: spans, failed: 0, dropped: 0, pending: 0 });
  });
});
