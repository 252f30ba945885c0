/**
 * The load generator, in its own process so that its CPU never counts as the
 * server's. The orchestrator forks it once (IPC channel) and sends one job at
 * a time: warm-up, a pause while the orchestrator snapshots the server
 * ("warm" → "go"), then the measured window, answered with one JSON result.
 */
import autocannon, { type RequestSpec, type Result } from 'autocannon';

export interface LoadJob {
  url: string;
  connections: number;
  warmupSec: number;
  durationSec: number;
  /** Fixed request rate over all connections (soak); absent: as fast as the server answers. */
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
}

export type ToWorker = { type: 'run'; job: LoadJob } | { type: 'go' } | { type: 'exit' };
export type FromWorker = { type: 'warm' } | { type: 'result'; result: LoadResult } | { type: 'error'; message: string };

const send = (message: FromWorker) => process.send?.(message);

function fire(job: LoadJob, seconds: number): Promise<{ result: Result; graphqlErrors: number }> {
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
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: url.origin,
        connections: job.connections,
        duration: seconds,
        timeout: 10,
        requests: [request],
        ...(job.overallRate ? { overallRate: job.overallRate } : {}),
      },
      (err, result) => (err ? reject(err) : resolve({ result, graphqlErrors })),
    );
  });
}

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
  const { result: r, graphqlErrors } = await fire(job, job.durationSec);
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
