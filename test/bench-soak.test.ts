import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { median } from '../bench/quantile.js';
import type { PgWindow } from '../bench/pg-activity.js';
import type { PostgresProcess } from '../bench/servers.js';
import { hostTrend, hostWindow, pearson, pgCpuWindow, pgPerRequest, pgTrend, p99Trend, serverPerLoadgen, slope, thirds, type HostCounters, type HostWindow } from '../bench/soak.js';

/** Client p99 per 10 s window of two 600 s soaks at 100 req/s: the audit head check scanning the trail, then fixed. */
const climbing = [
  20.6, 9.3, 17.2, 13.8, 23, 19.9, 20.5, 12.5, 18.9, 16.3, 17, 20.8, 17.8, 19.6, 17.3, 19.1, 23.2, 30.2, 22.9, 22.3, 24.9, 24.7, 26.1, 26.5, 25.3,
  24.3, 25.1, 29.3, 28.4, 26.2, 28.4, 32.7, 29.9, 31.6, 37.9, 34, 32.4, 32.3, 36.4, 37.8, 36.4, 40.9, 37.2, 53, 43.2, 42.7, 44.9, 44.4, 43.6, 45.2,
  43.9, 46.4, 52.3, 52.5, 53.8, 53.2, 52.8, 60.1, 57.3, 52.8,
];

describe('the soak p99 verdict', () => {
  it('calls a p99 that climbs over the soak growing, and one that holds flat', () => {
    expect(p99Trend(climbing)).toMatchObject({ grows: true });
    expect(p99Trend(climbing).endMs).toBeGreaterThan(2 * p99Trend(climbing).startMs);
    const flat = climbing.map((_, i) => 9 + (i % 5));
    expect(p99Trend(flat)).toMatchObject({ grows: false });
  });

  it('gives no verdict on fewer than 24 windows, and none at all on fewer than three', () => {
    expect(p99Trend(climbing.slice(0, 23)).grows).toBeNull();
    expect(p99Trend([5, 6])).toEqual({ startMs: NaN, endMs: NaN, grows: null });
  });

  it('leaves the settling start out: a slow first 30 s does not hide a climb', () => {
    const windows = Array.from({ length: 30 }, (_, i) => (i < 3 ? 200 : i < 20 ? 10 : 30));
    expect(p99Trend(windows)).toEqual({ startMs: 10, endMs: 30, grows: true });
  });

  it('never calls a series growing whose every window is within 1.5× of every other', () => {
    fc.assert(
      fc.property(fc.double({ min: 1, max: 100, noNaN: true }), fc.array(fc.double({ min: 1, max: 1.5, noNaN: true }), { minLength: 24, maxLength: 120 }), (base, factors) => {
        expect(p99Trend(factors.map((f) => base * f)).grows).toBe(false);
      }),
    );
  });

  it('calls growing any series whose last third is more than 1.5× its first', () => {
    fc.assert(
      fc.property(fc.integer({ min: 24, max: 120 }), fc.double({ min: 1.51, max: 10, noNaN: true }), (n, factor) => {
        const third = Math.floor(n / 3);
        const windows = Array.from({ length: n }, (_, i) => (i >= n - third ? 10 * factor : 10));
        expect(p99Trend(windows).grows).toBe(true);
      }),
    );
  });
});

describe('the soak RSS slope', () => {
  it('is the least-squares slope: exact on a line, 0 on fewer than two points', () => {
    fc.assert(
      fc.property(fc.double({ min: -50, max: 50, noNaN: true }), fc.double({ min: 0, max: 500, noNaN: true }), (m, b) => {
        const points = Array.from({ length: 10 }, (_, i): [number, number] => [i, m * i + b]);
        expect(slope(points)).toBeCloseTo(m, 6);
      }),
    );
    expect(slope([[1, 5]])).toBe(0);
  });
});

describe('median', () => {
  it('is the middle value, the mean of the middle two for an even count, NaN for none, whatever the order', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNaN();
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e6, max: 1e6, noNaN: true }), { minLength: 1, maxLength: 50 }), (xs) => {
        const m = median(xs);
        // The same number whatever the order (=== on purpose: 0 and -0 sort as equals, so either may come out).
        expect(median([...xs].reverse()) === m).toBe(true);
        expect(xs.filter((x) => x < m).length).toBeLessThanOrEqual(xs.length / 2);
        expect(xs.filter((x) => x > m).length).toBeLessThanOrEqual(xs.length / 2);
      }),
    );
  });
});

describe('PostgreSQL\'s work per soak window', () => {
  const proc = (cpuMs: number, ofDatabase: boolean, runQueueWaitMs = 0): PostgresProcess => ({ cpuMs, runQueueWaitMs, ofDatabase });

  it('splits the CPU between the bench database\'s backends (per request) and the rest (share of a core), whatever the processes', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ before: fc.option(fc.nat(1e6), { nil: undefined }), used: fc.nat(1e5), ofDatabase: fc.boolean() }), { maxLength: 30 }),
        fc.array(fc.nat(1e6), { maxLength: 5 }),
        fc.integer({ min: 1, max: 10_000 }),
        (rows, ended, requests) => {
          const before = new Map<number, PostgresProcess>();
          const after = new Map<number, PostgresProcess>();
          rows.forEach((r, i) => {
            if (r.before !== undefined) before.set(i, proc(r.before, r.ofDatabase, r.before / 2));
            after.set(i, proc((r.before ?? 0) + r.used, r.ofDatabase, (r.before ?? 0) / 2 + r.used / 4));
          });
          // Processes that ended within the window are gone from the second reading: their CPU is lost, never negative.
          ended.forEach((cpu, j) => before.set(1000 + j, proc(cpu, j % 2 === 0)));
          const w = pgCpuWindow(before, after, requests, 10);
          const sum = (db: boolean) => rows.filter((r) => r.ofDatabase === db).reduce((a, r) => a + r.used, 0);
          expect(w.backendsMsPerRequest).toBeCloseTo(sum(true) / requests, 9);
          // Each backend waited a quarter of what it used; the other processes' waits are not the database's.
          expect(w.backendsRunQueueMsPerRequest).toBeCloseTo(sum(true) / 4 / requests, 9);
          expect(w.otherCorePct).toBeCloseTo((sum(false) / 10_000) * 100, 9);
        },
      ),
    );
  });

  it('has no per-request figure for a window without requests, and counts a counter that went back as nothing', () => {
    expect(pgCpuWindow(new Map([[1, proc(50, true)]]), new Map([[1, proc(70, true)]]), 0, 10).backendsMsPerRequest).toBeNaN();
    expect(pgCpuWindow(new Map([[1, proc(90, true)]]), new Map([[1, proc(70, true)]]), 5, 10).backendsMsPerRequest).toBe(0);
  });

  const pg = (c: Partial<PgWindow>): PgWindow => ({
    checkpointsStarted: 0, checkpointEnded: false, checkpointSyncMs: 0, checkpointWriteMs: 0, checkpointBuffers: 0, walMb: 1, walFpi: 0,
    blocksHit: 0, blocksRead: 0, auditBlocksHit: 0, auditBlocksRead: 0, backendWrites: 0, ...c,
  });

  it('compares the last third of the windows with the first, per request, leaving unread figures out', () => {
    // 30 windows of 1000 requests: pages read in climb from 2 to 8 per request, the audit trail's from 0 to 5; the CPU is not read in the first half.
    const samples = Array.from({ length: 30 }, (_, i) => ({
      requests: 1000,
      pg: pg({ blocksRead: i < 10 ? 2000 : i < 20 ? 5000 : 8000, auditBlocksRead: i < 10 ? 0 : i < 20 ? 2000 : 5000, walMb: 8 }),
      ...(i >= 15 ? { pgCpu: { backendsMsPerRequest: i < 20 ? 0.4 : 0.6, backendsRunQueueMsPerRequest: 0.1, otherCorePct: 3 } } : {}),
    }));
    const trend = pgTrend(samples);
    expect(trend.pagesRead).toEqual({ start: 2, end: 8 });
    expect(trend.auditPagesRead).toEqual({ start: 0, end: 5 });
    expect(trend.walKb).toEqual({ start: 8.192, end: 8.192 });
    expect(trend.backendCpuMs.start).toBeNaN();
    expect(trend.backendCpuMs.end).toBe(0.6);
    expect(pgPerRequest({ requests: 0, pg: pg({ blocksRead: 10 }) })).toEqual({ backendCpuMs: null, pagesRead: null, auditPagesRead: null, walKb: null });
    expect(pgPerRequest({ requests: 10, pg: pg({ auditBlocksRead: null, walMb: null }) })).toMatchObject({ pagesRead: 0, auditPagesRead: null, walKb: null });
  });

  it('takes thirds as the p99 verdict does: the settling windows out of a long first third, NaN when too short', () => {
    expect(thirds([1, 2])).toEqual({ start: NaN, end: NaN });
    expect(thirds([100, 100, 100, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9])).toEqual({ start: 1, end: 9 });
    expect(thirds([5, 7, 0, 1, null, 3])).toEqual({ start: 6, end: 3 });
  });
});

describe('the machine around the server per soak window', () => {
  const at = (busyMs: number, iowaitMs: number, totalMs: number, serverRunQueueMs: number, benchCpuMs: number, loadgenCpuMs: number, probeMs?: number): HostCounters => ({
    machine: { busyMs, iowaitMs, totalMs }, serverRunQueueMs, benchCpuMs, loadgenCpuMs, ...(probeMs === undefined ? {} : { probeMs }),
  });

  it('gives the busy and I/O-wait shares of all cores, the server\'s wait for a core per request, and the bench\'s processes as shares of one core', () => {
    // Two cores for 10 s: 20,000 ms of CPU time, 9,000 of it busy, 400 waiting on I/O.
    // The probe ran before the window: its time is the window's; the one at the window's end is not.
    const w = hostWindow(at(1000, 100, 50_000, 30, 2000, 5000, 12.5), at(10_000, 500, 70_000, 530, 3500, 9000, 99), 1000, 10);
    expect(w).toEqual({ busyPct: 45, iowaitPct: 2, serverRunQueueMsPerRequest: 0.5, benchCorePct: 15, loadgenCorePct: 40, loadgenMsPerRequest: 4, probeMs: 12.5 });
    expect(hostWindow(at(1000, 100, 50_000, 30, 2000, 5000), at(10_000, 500, 70_000, 530, 3500, 9000), 1000, 10).probeMs).toBeNaN();
  });

  it('has no figure where nothing was measured, and never a negative one', () => {
    const same = at(5, 5, 5, 5, 5, 5);
    const w = hostWindow(same, same, 0, 0);
    expect(w.busyPct).toBeNaN();
    expect(w.serverRunQueueMsPerRequest).toBeNaN();
    expect(w.benchCorePct).toBeNaN();
    expect(w.loadgenMsPerRequest).toBeNaN();
    // No schedstats: NaN stays NaN.
    expect(hostWindow(at(0, 0, 0, NaN, 0, 0), at(1, 0, 2, NaN, 1, 1), 10, 1).serverRunQueueMsPerRequest).toBeNaN();
    fc.assert(
      fc.property(fc.array(fc.nat(1e6), { minLength: 12, maxLength: 12 }), fc.nat(1000), fc.integer({ min: 1, max: 60 }), (v, requests, seconds) => {
        const w = hostWindow(at(v[0]!, v[1]!, v[2]!, v[3]!, v[4]!, v[5]!), at(v[6]!, v[7]!, v[8]!, v[9]!, v[10]!, v[11]!), requests, seconds);
        for (const value of Object.values(w)) if (!Number.isNaN(value)) expect(value).toBeGreaterThanOrEqual(0);
      }),
    );
  });

  it('compares the last third of the windows with the first, leaving unread windows out', () => {
    const samples = Array.from({ length: 30 }, (_, i) =>
      i === 25
        ? { cpuMsPerRequest: NaN }
        : {
          // The server's CPU per request rises with the load generator's (a slower machine), four times it throughout,
          // but in window 27, where the profiler ran.
          cpuMsPerRequest: i === 27 ? 9 : i < 10 ? 1.6 : 2,
          ...(i === 27 ? { profiled: true as const } : {}),
          host: {
            busyPct: i < 10 ? 20 : 40, iowaitPct: 1, serverRunQueueMsPerRequest: i < 10 ? 0.1 : 0.3, benchCorePct: 5, loadgenCorePct: 8,
            loadgenMsPerRequest: i < 10 ? 0.4 : 0.5, probeMs: i === 28 ? NaN : i < 10 ? 30 : 36,
          },
          loopDelay: i % 2 === 0 ? { p99Ms: i < 10 ? 4 : 12, maxMs: 20 } : null,
          pgCpu: { backendsMsPerRequest: 1, backendsRunQueueMsPerRequest: i < 10 ? 0.05 : 0.2, otherCorePct: 1 },
        },
    );
    expect(hostTrend(samples)).toEqual({
      busyPct: { start: 20, end: 40 }, serverRunQueueMsPerRequest: { start: 0.1, end: 0.3 }, loopDelayP99Ms: { start: 4, end: 12 },
      pgRunQueueMsPerRequest: { start: 0.05, end: 0.2 }, benchCorePct: { start: 5, end: 5 }, loadgenCorePct: { start: 8, end: 8 }, probeMs: { start: 30, end: 36 },
      serverPerLoadgen: { start: 4, end: 4 }, serverLoadgenR: expect.closeTo(1, 12),
    });
  });

  it('tells a drift the load generator shares from one of the server\'s own', () => {
    const host = (loadgenMsPerRequest: number): HostWindow => ({
      busyPct: 30, iowaitPct: 0, serverRunQueueMsPerRequest: 0.5, benchCorePct: 2, loadgenCorePct: 5, loadgenMsPerRequest, probeMs: 6,
    });
    fc.assert(
      fc.property(
        fc.array(fc.double({ min: 0.2, max: 2, noNaN: true }), { minLength: 30, maxLength: 60 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.double({ min: 1.2, max: 3, noNaN: true }),
        (machine, cost, own) => {
          // The machine's speed moves both alike, window by window: the ratio holds at the server's own cost.
          const shared = machine.map((m) => ({ cpuMsPerRequest: cost * m, host: host(m) }));
          const trend = hostTrend(shared);
          expect(trend.serverPerLoadgen.start).toBeCloseTo(cost, 9);
          expect(trend.serverPerLoadgen.end).toBeCloseTo(cost, 9);
          if (Number.isFinite(trend.serverLoadgenR)) expect(trend.serverLoadgenR).toBeCloseTo(1, 9);
          // The server's own cost grows over the last third, the machine unchanged: the ratio moves by as much.
          const third = Math.floor(machine.length / 3);
          const grown = machine.map((m, i) => ({ cpuMsPerRequest: cost * m * (i >= machine.length - third ? own : 1), host: host(m) }));
          const moved = hostTrend(grown).serverPerLoadgen;
          expect(moved.end / moved.start).toBeCloseTo(own, 9);
        },
      ),
    );
  });

  it('has no ratio for a window without the load generator\'s figure, or one the profiler ran in', () => {
    const host = (loadgenMsPerRequest: number): HostWindow => ({
      busyPct: 30, iowaitPct: 0, serverRunQueueMsPerRequest: 0.5, benchCorePct: 2, loadgenCorePct: 5, loadgenMsPerRequest, probeMs: 6,
    });
    expect(serverPerLoadgen({ cpuMsPerRequest: 2, host: host(0.5) })).toBe(4);
    expect(serverPerLoadgen({ cpuMsPerRequest: 2, host: host(0.5), profiled: true })).toBeNull();
    expect(serverPerLoadgen({ cpuMsPerRequest: 2 })).toBeNull();
    expect(serverPerLoadgen({ cpuMsPerRequest: 2, host: host(0) })).toBeNull();
    expect(serverPerLoadgen({ cpuMsPerRequest: 2, host: host(NaN) })).toBeNull();
    expect(serverPerLoadgen({ cpuMsPerRequest: NaN, host: host(0.5) })).toBeNull();
  });
});

describe("Pearson's r", () => {
  const pairs = fc.array(fc.tuple(fc.integer({ min: -1000, max: 1000 }), fc.integer({ min: -1000, max: 1000 })), { minLength: 3, maxLength: 40 });

  it('lies in [-1, 1], is symmetric, and does not change with the units or the origin of either side', () => {
    fc.assert(
      fc.property(pairs, fc.double({ min: 0.01, max: 100, noNaN: true }), fc.double({ min: -100, max: 100, noNaN: true }), (points, scale, shift) => {
        const r = pearson(points);
        if (Number.isNaN(r)) return;
        expect(Math.abs(r)).toBeLessThanOrEqual(1);
        expect(pearson(points.map(([x, y]) => [y, x]))).toBeCloseTo(r, 6);
        expect(pearson(points.map(([x, y]) => [x * scale + shift, y]))).toBeCloseTo(r, 6);
        expect(pearson(points.map(([x, y]) => [x, -y]))).toBeCloseTo(-r, 6);
      }),
    );
  });

  it('is 1 for points on a rising line, -1 on a falling one, and NaN where it says nothing', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: -1000, max: 1000 }), { minLength: 3, maxLength: 30 }), fc.integer({ min: 1, max: 50 }), (xs, a) => {
        expect(pearson(xs.map((x) => [x, a * x + 7]))).toBeCloseTo(1, 9);
        expect(pearson(xs.map((x) => [x, -a * x]))).toBeCloseTo(-1, 9);
      }),
    );
    expect(pearson([[1, 2], [2, 4]])).toBeNaN();
    expect(pearson([[1, 5], [2, 5], [3, 5]])).toBeNaN();
    expect(pearson([[4, 1], [4, 2], [4, 3]])).toBeNaN();
    // A worked case: r of (1,2), (2,1), (3,4), (4,3) is 0.6.
    expect(pearson([[1, 2], [2, 1], [3, 4], [4, 3]])).toBeCloseTo(0.6, 12);
  });
});
