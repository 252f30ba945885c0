import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

/** A stand-in OpenTelemetry collector: records what arrives on /v1/traces. */
let collector: Server;
const received: Array<{ path: string; type: string; body: Buffer }> = [];
let server: TestServer;

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
    expect(server.running.telemetry.spanStats().dropped).toBe(0);
  });
});
