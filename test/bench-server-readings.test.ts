import { collectDefaultMetrics, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { loopDelayOf, machineCpu, machineProbeMs, parseMetricSums, runQueueWaitMs } from '../bench/servers.js';

const gauges = (min: number, p99: number, max: number) =>
  new Map([
    ['nodejs_eventloop_lag_min_seconds', min],
    ['nodejs_eventloop_lag_p99_seconds', p99],
    ['nodejs_eventloop_lag_max_seconds', max],
  ]);

describe("the server's event-loop delay as the bench reads it from /metrics", () => {
  it('takes the timer interval (the smallest sample) off, and reads nothing from a missing or empty histogram', () => {
    expect(loopDelayOf(gauges(0.0101, 0.0151, 0.0421))).toEqual({ p99Ms: expect.closeTo(5, 6), maxMs: expect.closeTo(32, 6) });
    // The floor exposes no metrics; a histogram with no sample reports min as the largest int64 in ns and max 0.
    expect(loopDelayOf(new Map())).toBeNull();
    expect(loopDelayOf(gauges(9223372036.854776, 0, 0))).toBeNull();
    expect(loopDelayOf(new Map([['nodejs_eventloop_lag_p99_seconds', 0.02]]))).toBeNull();
  });

  it("sees a loop held for 80 ms in prom-client's own exposition", async () => {
    const registry = new Registry();
    collectDefaultMetrics({ register: registry });
    const scrape = async () => loopDelayOf(parseMetricSums(await registry.metrics()));
    // Let the 10 ms timer run a few times, then scrape: this reading resets the histogram.
    await new Promise((r) => setTimeout(r, 100));
    await scrape();
    await new Promise((r) => setTimeout(r, 50));
    const until = performance.now() + 80;
    while (performance.now() < until) {
      // Hold the loop, as a long task in the server would.
    }
    await new Promise((r) => setTimeout(r, 50));
    const held = await scrape();
    expect(held).not.toBeNull();
    expect(held!.maxMs).toBeGreaterThan(50);
    expect(held!.p99Ms).toBeLessThanOrEqual(held!.maxMs);
    registry.clear();
  });
});

describe('the time a process waited for a CPU', () => {
  it("reads the main thread's run-queue wait from /proc, a figure that never goes back", () => {
    const first = runQueueWaitMs(process.pid);
    expect(first).toBeGreaterThanOrEqual(0);
    // Work that yields the CPU many times: each wake-up may wait, none takes wait away.
    for (let i = 0; i < 2000; i++) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 0.01);
    expect(runQueueWaitMs(process.pid)).toBeGreaterThanOrEqual(first);
    // No such process (or a kernel without schedstats): no figure, not an exception that would stop the bench.
    expect(runQueueWaitMs(2 ** 30)).toBeNaN();
  });
});

describe("the machine's CPU as the soak reads it from /proc/stat", () => {
  const ms = 1000 / (Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100);

  it('counts user, nice, system, irq, softirq and steal as busy, iowait apart, and every one of them in the total', () => {
    const stat = 'cpu  100 5 40 800 30 2 3 7 50 0\ncpu0 50 2 20 400 15 1 1 3 25 0\nintr 1 2 3\n';
    const read = machineCpu(stat);
    expect(read.busyMs).toBeCloseTo((100 + 5 + 40 + 2 + 3 + 7) * ms, 9);
    expect(read.iowaitMs).toBeCloseTo(30 * ms, 9);
    // Guest time (50) is already counted in user: adding it again would count it twice.
    expect(read.totalMs).toBeCloseTo((100 + 5 + 40 + 800 + 30 + 2 + 3 + 7) * ms, 9);
  });

  it('refuses a file that does not begin with the machine\'s line, and reads this machine\'s', () => {
    expect(() => machineCpu('cpu0 1 2 3 4\n')).toThrow(/cpu line/);
    expect(() => machineCpu('')).toThrow(/cpu line/);
    const now = machineCpu();
    expect(now.totalMs).toBeGreaterThan(0);
    expect(now.busyMs).toBeLessThanOrEqual(now.totalMs);
  });
});

describe('the machine probe a soak runs before each window', () => {
  it('times its fixed work as a finite duration, the work done each call (no compiler drops it)', () => {
    const a = machineProbeMs();
    const b = machineProbeMs();
    for (const ms of [a, b]) {
      expect(Number.isFinite(ms)).toBe(true);
      expect(ms).toBeGreaterThan(0);
    }
  });
});
