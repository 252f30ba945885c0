/**
 * Soak: the full variant alone at a fixed request rate, in back-to-back 10 s
 * windows, sampling RSS and p99 after each, then a linear fit of RSS over time
 * to tell a leak from a plateau.
 */
import type { LoadResult } from './load-worker.js';
import { cpuMs, rssMb, type LoadWorker, type ServerHandle } from './servers.js';

export interface SoakSample {
  t: number;
  rps: number;
  p99: number;
  errors: number;
  rssMb: number;
  cpuMsPerRequest: number;
}

export interface SoakResult {
  rate: number;
  samples: SoakSample[];
  /** Least-squares slope of RSS over time, MB per minute, over the second half of the windows (the first half lets the heap settle). */
  rssSlopeMbPerMin: number;
  /** null: too few windows to tell. */
  grows: boolean | null;
}

const WINDOW_SEC = 10;
/** Windows fitted for a verdict on RSS growth (two minutes, in the second half of the soak: four minutes in all). */
const MIN_FIT = 12;

/** Slope of y over x by least squares. */
export function slope(points: Array<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((a, [x]) => a + x, 0) / n;
  const my = points.reduce((a, [, y]) => a + y, 0) / n;
  const sxy = points.reduce((a, [x, y]) => a + (x - mx) * (y - my), 0);
  const sxx = points.reduce((a, [x]) => a + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : sxy / sxx;
}

export async function soak(opts: {
  worker: LoadWorker;
  server: ServerHandle;
  headers: Record<string, string>;
  bodies: string[];
  seconds: number;
  rate: number;
  connections: number;
}): Promise<SoakResult> {
  const windows = Math.max(1, Math.floor(opts.seconds / WINDOW_SEC));
  const samples: SoakSample[] = [];
  const started = performance.now();
  console.log(`soak: ${windows} × ${WINDOW_SEC} s at ${opts.rate} req/s (mixed S1–S4), full variant`);
  console.log('   t s   req/s   p99 ms  errors  RSS MB  CPU ms/req');
  for (let i = 0; i < windows; i++) {
    let cpuBefore = 0;
    const job = { url: `${opts.server.url}/graphql`, connections: opts.connections, warmupSec: 0, durationSec: WINDOW_SEC, overallRate: opts.rate, headers: opts.headers, bodies: opts.bodies };
    const load: LoadResult = await opts.worker.run(job, () => {
      cpuBefore = cpuMs(opts.server.pid);
      return Promise.resolve();
    });
    const sample: SoakSample = {
      t: Math.round((performance.now() - started) / 1000),
      rps: load.rps,
      p99: load.p99,
      errors: load.non2xx + load.transportErrors + load.graphqlErrors,
      rssMb: rssMb(opts.server.pid),
      cpuMsPerRequest: load.requests > 0 ? (cpuMs(opts.server.pid) - cpuBefore) / load.requests : NaN,
    };
    samples.push(sample);
    console.log(
      `${String(sample.t).padStart(6)} ${sample.rps.toFixed(0).padStart(7)} ${sample.p99.toFixed(1).padStart(8)} ${String(sample.errors).padStart(7)} ` +
        `${sample.rssMb.toFixed(0).padStart(7)} ${sample.cpuMsPerRequest.toFixed(2).padStart(11)}`,
    );
  }
  // The heap settles first: after the priming load, RSS fell from ~300 to ~200 MB over the first 90 s of a
  // 600 s soak at 100 req/s, and a fit from the start took that for a negative slope that hid a later climb.
  const fitted = samples.slice(Math.floor(samples.length / 2));
  const rssSlopeMbPerMin = slope(fitted.map((s) => [s.t / 60, s.rssMb]));
  // "Grows": a steady climb worth more than 2 % of the footprint per ten minutes; GC makes a shorter series meaningless.
  const first = fitted[0]?.rssMb ?? 0;
  const grows = fitted.length < MIN_FIT ? null : rssSlopeMbPerMin * 10 > 0.02 * first;
  const verdict = grows === null ? `too short to tell (needs ${2 * MIN_FIT} windows)` : grows ? 'GROWS' : 'flat';
  console.log(`RSS slope ${rssSlopeMbPerMin.toFixed(2)} MB/min over the last ${fitted.length} samples (the second half) → ${verdict}`);
  return { rate: opts.rate, samples, rssSlopeMbPerMin, grows };
}
