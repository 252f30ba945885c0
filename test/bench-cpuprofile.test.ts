import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LONG_STRETCH_MS, profileShift, profileWork, readProfile, stretchSummary, type CpuProfile } from '../bench/cpuprofile.js';
import { median } from '../bench/quantile.js';
import { fittedWindows, p99Trend, profiledWindows, rangeReadings, type HostWindow } from '../bench/soak.js';

/** What a sample was doing: waiting in the loop, custos's JavaScript, a native frame it called, the collector, the profiler itself. */
type Kind = 'idle' | 'js' | 'native' | 'gc' | 'profiler' | 'pkg';

const frame = (functionName: string, url = '') => ({ functionName, url, lineNumber: 0 });
/** One tree with a node per kind: (root) → (idle) | reader (→ memcpy) | (garbage collector) | the profiler | postgres.js. */
const nodes: CpuProfile['nodes'] = [
  { id: 1, callFrame: frame('(root)'), children: [2, 3, 5, 6, 7] },
  { id: 2, callFrame: frame('(idle)') },
  { id: 3, callFrame: frame('readRows', 'file:///app/dist/authz/reader.js'), children: [4] },
  { id: 4, callFrame: frame('memcpy') },
  { id: 5, callFrame: frame('(garbage collector)') },
  { id: 6, callFrame: frame('onSignal', 'file:///app/bench/.tmp/build/bench/cpu-profiler.js') },
  { id: 7, callFrame: frame('parse', 'file:///app/node_modules/postgres/cjs/src/connection.js') },
];
const nodeOf: Record<Kind, number> = { idle: 2, js: 3, native: 4, gc: 5, profiler: 6, pkg: 7 };
const componentOf: Record<Exclude<Kind, 'idle' | 'profiler'>, string> = { js: 'src/authz/', native: 'src/authz/', gc: '(garbage collector)', pkg: 'postgres' };

/** A profile of samples each lasting `us` (until the next sample): V8 records the time before each, so the deltas are shifted by one. */
function profileOf(samples: Array<{ kind: Kind; us: number }>): CpuProfile {
  return { nodes, samples: samples.map((s) => nodeOf[s.kind]), timeDeltas: samples.map((s, i) => (i === 0 ? 17 : samples[i - 1]!.us)) };
}

/** How long each sample counts for: its `us`, the last one the median of the recorded deltas. */
function durations(samples: Array<{ kind: Kind; us: number }>): number[] {
  const deltas = profileOf(samples).timeDeltas;
  return samples.map((s, i) => (i === samples.length - 1 ? median(deltas) : s.us));
}

const sample = fc.record({ kind: fc.constantFrom<Kind>('idle', 'js', 'native', 'gc', 'profiler', 'pkg'), us: fc.integer({ min: 1, max: 3_000 }) });

/** The busy stretches of a sample sequence: each maximal run of samples that are not idle, its length the sum of its samples'. */
function expectedStretches(samples: Array<{ kind: Kind; us: number }>): Array<{ ms: number; own: Map<string, number> }> {
  const out: Array<{ ms: number; own: Map<string, number> }> = [];
  const dur = durations(samples);
  let current: { us: number; own: Map<string, number> } | undefined;
  samples.forEach((s, i) => {
    if (s.kind === 'idle') {
      if (current) out.push({ ms: current.us / 1000, own: current.own });
      current = undefined;
      return;
    }
    current ??= { us: 0, own: new Map() };
    current.us += dur[i]!;
    if (s.kind !== 'profiler') current.own.set(componentOf[s.kind], (current.own.get(componentOf[s.kind]) ?? 0) + dur[i]!);
  });
  if (current) out.push({ ms: current.us / 1000, own: current.own });
  return out;
}

describe('a CPU profile read for where the event loop was held', () => {
  it('times every run of busy samples between idle ones, and charges only the long runs to the long-stretch components', () => {
    fc.assert(
      fc.property(fc.array(sample, { maxLength: 200 }), (samples) => {
        const work = profileWork(profileOf(samples));
        const expected = expectedStretches(samples);
        expect(work.stretchesMs).toHaveLength(expected.length);
        expected.forEach((e, i) => expect(work.stretchesMs[i]).toBeCloseTo(e.ms, 6));
        const long = new Map<string, number>();
        for (const e of expected.filter((x) => x.ms >= LONG_STRETCH_MS)) for (const [c, us] of e.own) long.set(c, (long.get(c) ?? 0) + us);
        expect(Object.fromEntries(work.longComponents)).toEqual(Object.fromEntries(long));
      }),
    );
  });

  it('counts busy time without idle or profiler samples, and charges a native frame to its JavaScript caller', () => {
    fc.assert(
      fc.property(fc.array(sample, { maxLength: 200 }), (samples) => {
        const work = profileWork(profileOf(samples));
        const dur = durations(samples);
        const own = samples.map((s, i) => ({ kind: s.kind, us: dur[i]! })).filter((s) => s.kind !== 'idle' && s.kind !== 'profiler');
        expect(work.busyUs).toBeCloseTo(own.reduce((a, s) => a + s.us, 0), 6);
        const components = new Map<string, number>();
        for (const s of own) components.set(componentOf[s.kind as keyof typeof componentOf], (components.get(componentOf[s.kind as keyof typeof componentOf]) ?? 0) + s.us);
        expect(Object.fromEntries(work.components)).toEqual(Object.fromEntries(components));
        expect([...work.components.keys()]).not.toContain('(native)');
      }),
    );
  });

  it('sums the stretches up per thousand requests, and names what grew between an early and a late profile', () => {
    // Early: 100 requests, each 1 ms of reader work then idle. Late: the same, plus every tenth request holds the loop 8 ms in postgres.js.
    const early = Array.from({ length: 100 }, () => [{ kind: 'js' as const, us: 1_000 }, { kind: 'idle' as const, us: 9_000 }]).flat();
    const late = Array.from({ length: 100 }, (_, i) => [{ kind: 'js' as const, us: 1_000 }, ...(i % 10 === 0 ? [{ kind: 'pkg' as const, us: 8_000 }] : []), { kind: 'idle' as const, us: 9_000 }]).flat();
    const shift = profileShift({ work: profileWork(profileOf(early)), requests: 100 }, { work: profileWork(profileOf(late)), requests: 100 });
    expect(shift.busyMsPerRequest.early).toBeCloseTo(1, 9);
    expect(shift.busyMsPerRequest.late).toBeCloseTo(1.8, 9);
    expect(shift.grown[0]).toMatchObject({ name: expect.stringContaining('parse') as unknown, early: 0 });
    expect(shift.grown[0]!.late).toBeCloseTo(0.8, 9);
    expect(shift.grown.map((g) => g.name)).not.toContain(expect.stringContaining('readRows'));
    expect(shift.stretches.early).toMatchObject({ perThousandRequests: 1000, longPerThousandRequests: 0, longBusyPct: 0 });
    expect(shift.stretches.late).toMatchObject({ perThousandRequests: 1000, longPerThousandRequests: 100, maxMs: 9 });
    // The ten long stretches hold 10 × 9 ms of the late profile's 180 ms of busy time.
    expect(shift.stretches.late.longBusyPct).toBeCloseTo(50, 9);
    expect(shift.longComponents.map((c) => c.name)).toEqual(['postgres', 'src/authz/']);
    expect(stretchSummary(profileWork(profileOf([])), 0)).toMatchObject({ perThousandRequests: NaN, maxMs: NaN });
  });

  it('refuses a file that is not a V8 CPU profile', () => {
    const dir = mkdtempSync(join(tmpdir(), 'custos-prof-'));
    try {
      const file = join(dir, 'x.cpuprofile');
      writeFileSync(file, JSON.stringify({ nodes: [], samples: [1, 2], timeDeltas: [1] }));
      expect(() => readProfile(file)).toThrow('is not a V8 CPU profile');
      writeFileSync(file, JSON.stringify(profileOf([{ kind: 'js', us: 5 }])));
      expect(readProfile(file).samples).toEqual([3]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the windows a soak profiles', () => {
  it('takes windows 4–6 and the last three, never overlapping, and none when the soak is too short to keep them apart', () => {
    expect(profiledWindows(60)).toEqual([{ from: 3, to: 6 }, { from: 57, to: 60 }]);
    expect(profiledWindows(9)).toEqual([{ from: 3, to: 6 }, { from: 6, to: 9 }]);
    expect(profiledWindows(8)).toEqual([]);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 10_000 }), (windows) => {
        const ranges = profiledWindows(windows);
        for (const r of ranges) expect(r.to - r.from).toBe(3);
        if (ranges.length === 2) expect(ranges[0]!.to).toBeLessThanOrEqual(ranges[1]!.from);
        if (ranges.length === 2) expect(ranges[1]!.to).toBe(windows);
        expect(ranges.length === 2).toBe(windows >= 9);
      }),
    );
  });
});

describe('the verdicts of a profiled soak', () => {
  it('fit the second half without the profiled windows, and leave them out of the p99 thirds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), (windows) => {
        const ranges = profiledWindows(windows);
        const samples = Array.from({ length: windows }, (_, i) => ({ i, ...(ranges.some((r) => i >= r.from && i < r.to) ? { profiled: true as const } : {}) }));
        const fitted = fittedWindows(samples);
        expect(fitted.every((s) => !s.profiled && s.i >= Math.floor(windows / 2))).toBe(true);
        expect(fitted).toHaveLength(samples.slice(Math.floor(windows / 2)).filter((s) => !s.profiled).length);
      }),
    );
    // A profiled window's p99 (sampling raises it) does not move the verdict: the profiled windows are NaN to it.
    const p99s = Array.from({ length: 60 }, (_, i) => (i >= 57 || (i >= 3 && i < 6) ? 500 : 10));
    const profiled = new Set(profiledWindows(60).flatMap((r) => Array.from({ length: r.to - r.from }, (_, k) => r.from + k)));
    expect(p99Trend(p99s.map((v, i) => (profiled.has(i) ? NaN : v)))).toEqual({ startMs: 10, endMs: 10, grows: false });
  });
});

describe('what /proc read over a profiled range of windows', () => {
  const host = (wait: number): HostWindow => ({ busyPct: 30, iowaitPct: 0, serverRunQueueMsPerRequest: wait, benchCorePct: 1, loadgenCorePct: 5, loadgenMsPerRequest: 0.5, probeMs: 7 });
  it('weights each window by its requests, within the windows of the range only', () => {
    const samples = [
      { requests: 1000, cpuMsPerRequest: 9, host: host(9) },
      { requests: 1000, cpuMsPerRequest: 2, host: host(1) },
      { requests: 3000, cpuMsPerRequest: 4, host: host(0.5) },
      { requests: 1000, cpuMsPerRequest: 9, host: host(9) },
    ];
    const r = rangeReadings(samples, { from: 1, to: 3 });
    expect(r.requests).toBe(4000);
    expect(r.cpuMsPerRequest).toBeCloseTo((2 * 1000 + 4 * 3000) / 4000, 12);
    expect(r.serverWaitMsPerRequest).toBeCloseTo((1 * 1000 + 0.5 * 3000) / 4000, 12);
    fc.assert(
      fc.property(fc.array(fc.record({ requests: fc.integer({ min: 1, max: 5000 }), cpu: fc.double({ min: 0.1, max: 10, noNaN: true }) }), { minLength: 1, maxLength: 12 }), (ws) => {
        const got = rangeReadings(ws.map((w) => ({ requests: w.requests, cpuMsPerRequest: w.cpu, host: host(1) })), { from: 0, to: ws.length });
        const cpus = ws.map((w) => w.cpu);
        expect(got.cpuMsPerRequest).toBeGreaterThanOrEqual(Math.min(...cpus) - 1e-9);
        expect(got.cpuMsPerRequest).toBeLessThanOrEqual(Math.max(...cpus) + 1e-9);
        expect(got.serverWaitMsPerRequest).toBeCloseTo(1, 9);
      }),
    );
  });

  it('reads nothing rather than part of the range when a window went unread', () => {
    const samples = [{ requests: 1000, cpuMsPerRequest: 2, host: host(1) }, { requests: 1000, cpuMsPerRequest: 3 }];
    expect(rangeReadings(samples, { from: 0, to: 2 })).toEqual({ requests: 2000, cpuMsPerRequest: 2.5, serverWaitMsPerRequest: NaN });
    expect(rangeReadings([], { from: 0, to: 3 })).toEqual({ requests: 0, cpuMsPerRequest: NaN, serverWaitMsPerRequest: NaN });
  });
});
