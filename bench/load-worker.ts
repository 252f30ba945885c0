/**
 * The load generator, in its own process so that its CPU never counts as the
 * server's. The orchestrator forks it once (IPC channel) and sends one job at
 * a time: warm-up, a pause while the orchestrator snapshots the server
 * ("warm" → "go"), then the measured window, answered with one JSON result.
 * As fast as the server answers, autocannon drives the load; at a fixed rate,
 * requests go out evenly spaced (see `paced`).
 */
import http from 'node:http';
import autocannon, { type RequestSpec, type Result } from 'autocannon';
import { nearestRank } from './quantile.js';

export interface LoadJob {
  url: string;
  connections: number;
  warmupSec: number;
  durationSec: number;
  /** Fixed request rate over all connections, evenly spaced (soak, fixed-rate windows); absent: as fast as the server answers. */
  overallRate?: number;
  headers: Record<string, string>;
  /** Request bodies, sent in turn (one per request), so point lookups hit different rows. */
  bodies: string[];
}

export interface LoadResult {
  requests: number;
  durationSec: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  non2xx: number;
  /** Socket errors and timeouts. */
  transportErrors: number;
  /** 2xx responses whose body carries a GraphQL `errors` array. */
  graphqlErrors: number;
  /**
   * At a fixed rate only: how long requests waited for one of the
   * connections to come free (from being handed to the agent to being given
   * a socket), ms. Part of the latency above, spent in the client: every
   * connection was still waiting for an earlier reply.
   */
  connectionWait?: { p50: number; p99: number };
}

export type ToWorker = { type: 'run'; job: LoadJob } | { type: 'go' } | { type: 'exit' };
export type FromWorker = { type: 'warm' } | { type: 'result'; result: LoadResult } | { type: 'error'; message: string };

const send = (message: FromWorker) => process.send?.(message);

/** As fast as the server answers: every connection sends its next request when the previous reply is in. */
async function unpaced(job: LoadJob, seconds: number): Promise<LoadResult> {
  const url = new URL(job.url);
  let next = 0;
  let graphqlErrors = 0;
  const request: RequestSpec = {
    method: 'POST',
    path: url.pathname,
    headers: job.headers,
    body: job.bodies[0] ?? '',
    onResponse: (status, body) => {
      if (status < 300 && body.includes('"errors":')) graphqlErrors += 1;
    },
  };
  // A fixed body is built once by autocannon; only rotating bodies pay a rebuild per request.
  if (job.bodies.length > 1) request.setupRequest = (req) => ({ ...req, body: job.bodies[next++ % job.bodies.length] ?? '' });
  const r = await new Promise<Result>((resolve, reject) => {
    autocannon({ url: url.origin, connections: job.connections, duration: seconds, timeout: 10, requests: [request] }, (err, result) => (err ? reject(err) : resolve(result)));
  });
  const requests = r.requests.total;
  return {
    requests,
    durationSec: r.duration,
    rps: r.duration > 0 ? requests / r.duration : 0,
    p50: r.latency.p50,
    p90: r.latency.p90,
    p99: r.latency.p99,
    max: r.latency.max,
    non2xx: r.non2xx,
    transportErrors: r.errors + r.timeouts,
    graphqlErrors,
  };
}

/** Per request, as autocannon's `timeout: 10`. */
const TIMEOUT_MS = 10_000;

/** Nearest-rank percentile of ascending values, rounded to 0.01 ms. */
function percentile(sorted: number[], p: number): number {
  return Math.round(nearestRank(sorted, p) * 100) / 100;
}

/**
 * A fixed rate, evenly spaced: request i falls due i/rate seconds into the
 * window and goes out on the next free one of `connections` keep-alive
 * connections. autocannon's `overallRate` is not that: it gives each
 * connection a quota per second, which the connection spends back to back as
 * each second starts and then idles, so half the capacity means saturation
 * for half of every second; and its coordinated-omission correction takes
 * ceil(1/rate) = 1 ms as the interval, recording a 20 ms reply as 20, 19, …,
 * 1 ms. Latency here runs from the moment a request is handed to the agent to
 * the end of its reply, so waiting for a free connection counts (and is
 * reported apart, as `connectionWait`). req/s counts
 * the replies completed within the window; replies still due at its end are
 * awaited and their latencies kept.
 */
function paced(job: LoadJob, rate: number, seconds: number): Promise<LoadResult> {
  const url = new URL(job.url);
  // fifo: connections are used in turn, so none idles into the server's keep-alive timeout.
  const agent = new http.Agent({ keepAlive: true, maxSockets: job.connections, scheduling: 'fifo' });
  const total = Math.max(1, Math.round(rate * seconds));
  const latencies: number[] = [];
  const waits: number[] = [];
  const tally = { inWindow: 0, non2xx: 0, transportErrors: 0, graphqlErrors: 0 };
  const start = performance.now();
  const end = start + seconds * 1000;
  let sent = 0;
  let pending = 0;
  return new Promise((resolve) => {
    const settleOne = () => {
      pending -= 1;
      if (sent === total && pending === 0) {
        agent.destroy();
        const sorted = latencies.sort((a, b) => a - b);
        const waited = waits.sort((a, b) => a - b);
        resolve({
          requests: tally.inWindow, durationSec: seconds, rps: tally.inWindow / seconds,
          p50: percentile(sorted, 0.5), p90: percentile(sorted, 0.9), p99: percentile(sorted, 0.99), max: percentile(sorted, 1),
          non2xx: tally.non2xx, transportErrors: tally.transportErrors, graphqlErrors: tally.graphqlErrors,
          connectionWait: { p50: percentile(waited, 0.5), p99: percentile(waited, 0.99) },
        });
      }
    };
    const send = (body: string) => {
      const issued = performance.now();
      let settled = false;
      const once = (then: () => void) => {
        if (settled) return;
        settled = true;
        then();
        settleOne();
      };
      const req = http.request(
        { host: url.hostname, port: url.port, path: url.pathname, method: 'POST', agent, timeout: TIMEOUT_MS, headers: { ...job.headers, 'content-length': Buffer.byteLength(body) } },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', () => once(() => (tally.transportErrors += 1)));
          res.on('end', () =>
            once(() => {
              const done = performance.now();
              latencies.push(done - issued);
              if (done <= end) tally.inWindow += 1;
              const status = res.statusCode ?? 0;
              if (status < 200 || status >= 300) tally.non2xx += 1;
              else if (Buffer.concat(chunks).toString('utf8').includes('"errors":')) tally.graphqlErrors += 1;
            }),
          );
        },
      );
      // The agent hands out a socket once one of the connections is free (a tick later when one already is).
      req.once('socket', () => waits.push(performance.now() - issued));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => once(() => (tally.transportErrors += 1)));
      req.end(body);
    };
    // Woken for the next request due (Node's timers keep whole milliseconds, so above 1000 req/s a wake sends several).
    const tick = () => {
      const due = Math.min(total, Math.floor(((performance.now() - start) * rate) / 1000) + 1);
      for (; sent < due; sent++) {
        pending += 1;
        send(job.bodies[sent % job.bodies.length] ?? '');
      }
      if (sent < total) setTimeout(tick, Math.max(1, Math.ceil(start + (sent * 1000) / rate - performance.now())));
    };
    tick();
  });
}

const fire = (job: LoadJob, seconds: number) => (job.overallRate ? paced(job, job.overallRate, seconds) : unpaced(job, seconds));

function waitFor(type: ToWorker['type']): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (m: ToWorker) => {
      if (m.type !== type) return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
}

async function run(job: LoadJob): Promise<LoadResult> {
  if (job.warmupSec > 0) await fire(job, job.warmupSec);
  const go = waitFor('go');
  send({ type: 'warm' });
  await go;
  return fire(job, job.durationSec);
}

process.on('message', (m: ToWorker) => {
  if (m.type === 'exit') process.exit(0);
  if (m.type !== 'run') return;
  run(m.job).then(
    (result) => send({ type: 'result', result }),
    (e: unknown) => send({ type: 'error', message: (e as Error).message }),
  );
});
// Orphan guard: when the orchestrator dies, the IPC channel closes and the worker leaves with it.
process.on('disconnect', () => process.exit(0));
