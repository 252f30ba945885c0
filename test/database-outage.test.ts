import { createServer, connect, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

/** A TCP proxy in front of PostgreSQL that the test can cut and restore. */
class Proxy {
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {}

  async open(port = 0): Promise<void> {
    this.server = createServer((client) => {
      const upstream = connect(this.target.port, this.target.host);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => s.destroy());
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async cut(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server!.close(() => resolve()));
  }
}

// PGlite runs in-process and cannot go down; the outage is a PostgreSQL concern.
describe.runIf(process.env.DATABASE_URL)('database outage (PostgreSQL behind a proxy)', () => {
  let server: TestServer;
  let proxy: Proxy;
  beforeAll(async () => {
    const base = new URL(process.env.DATABASE_URL!);
    proxy = new Proxy({ host: base.hostname, port: Number(base.port || 5432) });
    await proxy.open();
    server = await startTestServer({ customers: 10, viaPort: proxy.port });
  });
  afterAll(async () => {
    await server?.stop();
    await proxy?.cut();
  });

  it('readiness falls and requests fail fast with SERVICE_UNAVAILABLE, then both recover without restart', async () => {
    const ready = () => fetch(server.url.replace('/graphql', '/readyz')).then((r) => r.status);
    expect(await ready()).toBe(200);
    const port = proxy.port;
    await proxy.cut();
    expect(await ready()).toBe(503);
    expect((await fetch(server.url.replace('/graphql', '/healthz'))).status).toBe(200);
    const started = Date.now();
    const res = await gql(server, 'u-mgr-1', '{ customers(first: 2) { edges { node { id } } } }');
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(res.json.errors[0].extensions.code).toBe('SERVICE_UNAVAILABLE');
    expect(res.json.data ?? null).toBeNull();
    await proxy.open(port);
    let recovered = 0;
    for (let i = 0; i < 40 && recovered !== 200; i++) {
      await new Promise((r) => setTimeout(r, 250));
      recovered = await ready();
    }
    expect(recovered).toBe(200);
    const again = await gql(server, 'u-mgr-1', '{ customers(first: 2) { edges { node { id } } } }');
    expect(again.json.data.customers.edges.length).toBe(2);
  });
});
