import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LoadWorker } from '../bench/servers.js';

/**
 * The bench's load generator at a fixed rate (bench/load-worker.ts `paced`),
 * against a server in this process that holds every reply for HOLD_MS: the
 * latency it reports runs from sending, and the part spent waiting for a free
 * connection is reported apart.
 */
const HOLD_MS = 100;

let server: http.Server;
let url = '';
let worker: LoadWorker;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end('{"data":{}}'), HOLD_MS));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
  worker = LoadWorker.start();
});

afterAll(async () => {
  await worker.stop();
  await new Promise((resolve) => server.close(resolve));
});

const job = (connections: number, rate: number) => ({ url, connections, warmupSec: 0, durationSec: 1, overallRate: rate, headers: {}, bodies: ['{"query":"{ __typename }"}'] });

describe('the load generator at a fixed rate', () => {
  it('counts the wait for a free connection in the latency, and reports it apart', async () => {
    // 20 requests due 50 ms apart on one connection whose replies take at least 100 ms each: request i gets the
    // connection no earlier than i × 100 ms, so it waits at least i × 50 ms.
    const result = await worker.run(job(1, 20), () => Promise.resolve());
    expect(result.non2xx + result.transportErrors + result.graphqlErrors).toBe(0);
    expect(result.connectionWait).toBeDefined();
    const wait = result.connectionWait!;
    expect(wait.p50).toBeGreaterThanOrEqual(9 * 50 - 5);
    expect(wait.p99).toBeGreaterThanOrEqual(19 * 50 - 5);
    // The slowest request waited for the connection and then for its own reply.
    expect(result.max).toBeGreaterThanOrEqual(wait.p99 + HOLD_MS - 5);
  });

  it('never reports a wait longer than the latency it is part of', async () => {
    const result = await worker.run(job(4, 20), () => Promise.resolve());
    expect(result.non2xx + result.transportErrors + result.graphqlErrors).toBe(0);
    expect(result.p50).toBeGreaterThanOrEqual(HOLD_MS - 5);
    expect(result.connectionWait!.p50).toBeLessThanOrEqual(result.p50);
    expect(result.connectionWait!.p99).toBeLessThanOrEqual(result.max);
  });
});
