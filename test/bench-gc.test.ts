import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { gcWindow, oldGenerationGrowth, readGcLog, type GcBatch, type MemorySnapshot } from '../bench/gc-log.js';
import { heapTrend, rssSplit } from '../bench/soak.js';

/** The soak watches the server's collector: bench/gc-watch.ts writes the log, bench/gc-log.ts reads it, soak.ts judges it. */

const dir = mkdtempSync(join(tmpdir(), 'custos-gc-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Heap left after each major GC in a 300 s quick soak here ([seconds, MB]): the first two while the server warmed up. */
const recorded: Array<[number, number]> = [
  [0, 13], [4, 29.1], [44, 39.5], [52, 39.4], [58, 38.8], [64, 38.8], [72, 39.7], [78, 38.3], [84, 38.6], [92, 38.4], [98, 39], [104, 39.3],
  [112, 38.6], [118, 38.9], [124, 39.3], [132, 39.6], [138, 39.3], [144, 39.3], [152, 38.9], [158, 39.1], [168, 39.9], [176, 38.7], [182, 39.5],
  [188, 39.2], [196, 38.9], [202, 39.3], [210, 40.9], [216, 40.6], [224, 38.6], [230, 40.1], [238, 39.7], [244, 38.7], [250, 39.4], [258, 39.1],
  [264, 39.5], [270, 40.1], [278, 39.2], [284, 40.1], [290, 39.2], [298, 39.6], [304, 38.9],
];
const secondHalf = recorded.slice(Math.floor(recorded.length / 2)).map(([s, mb]): [number, number] => [s / 60, mb]);
const plus = (points: Array<[number, number]>, mbPerMin: number) => points.map(([min, mb]): [number, number] => [min, mb + mbPerMin * min]);

describe('the soak heap verdict', () => {
  it('calls the recorded soak flat, and the same soak with a leak of 0.3 MB a minute growing', () => {
    expect(heapTrend(secondHalf)).toMatchObject({ majors: 21, grows: false });
    expect(heapTrend(plus(secondHalf, 0.3))).toMatchObject({ grows: true });
    // The threshold is 5 % of the level per ten minutes: a leak of 0.1 MB a minute is below it.
    expect(heapTrend(plus(secondHalf, 0.1)).grows).toBe(false);
  });

  it('on a straight line, grows exactly when the climb over ten minutes is more than 5 % of the level', () => {
    fc.assert(
      fc.property(fc.double({ min: 10, max: 500, noNaN: true }), fc.double({ min: -5, max: 5, noNaN: true }), fc.integer({ min: 12, max: 80 }), (level, perMin, n) => {
        const points = Array.from({ length: n }, (_, i): [number, number] => [i / 6, level + perMin * (i / 6 - (n - 1) / 12)]);
        const trend = heapTrend(points);
        expect(trend.slopeMbPerMin).toBeCloseTo(perMin, 6);
        expect(trend.levelMb).toBeCloseTo(level, 6);
        if (Math.abs(perMin * 10 - 0.05 * level) > 1e-6) expect(trend.grows).toBe(perMin * 10 > 0.05 * level);
      }),
    );
  });

  it('gives no verdict on fewer than 12 collections', () => {
    expect(heapTrend(plus(secondHalf, 5).slice(0, 11)).grows).toBeNull();
    expect(heapTrend([]).grows).toBeNull();
  });
});

describe('the split of the RSS slope', () => {
  const snapshot = (heap: number, young: number, code: number, outside: number): MemorySnapshot => ({
    rssMb: heap + outside,
    heapCommittedMb: heap,
    spacesMb: { new_space: young, code_space: code, old_space: heap - young - code },
    externalMb: 2,
    arrayBuffersMb: 1,
  });

  it('fits each part of RSS over the windows: the heap V8 committed, its young generation and code, and the rest', () => {
    fc.assert(
      fc.property(
        fc.record({ heap: fc.double({ min: -2, max: 2, noNaN: true }), young: fc.double({ min: -1, max: 1, noNaN: true }), code: fc.double({ min: -0.5, max: 0.5, noNaN: true }), outside: fc.double({ min: -2, max: 2, noNaN: true }) }),
        fc.integer({ min: 2, max: 60 }),
        (perMin, n) => {
          const windows = Array.from({ length: n }, (_, i) => {
            const min = (i * 10) / 60;
            return { t: i * 10, memory: snapshot(100 + perMin.heap * min, 16 + perMin.young * min, 5 + perMin.code * min, 60 + perMin.outside * min) };
          });
          const split = rssSplit(windows)!;
          expect(split.heapCommitted).toBeCloseTo(perMin.heap, 6);
          expect(split.young).toBeCloseTo(perMin.young, 6);
          expect(split.code).toBeCloseTo(perMin.code, 6);
          expect(split.outside).toBeCloseTo(perMin.outside, 6);
        },
      ),
    );
  });

  it('leaves out windows without a reading, and says nothing with fewer than two', () => {
    const windows = [
      { t: 0, memory: snapshot(100, 16, 5, 60) },
      { t: 10, memory: null },
      { t: 60, memory: snapshot(101, 16, 5, 63) },
    ];
    expect(rssSplit(windows)).toMatchObject({ heapCommitted: expect.closeTo(1, 9), outside: expect.closeTo(3, 9), young: 0, code: 0 });
    expect(rssSplit(windows.slice(0, 2))).toBeNull();
  });
});

describe('the GC log', () => {
  const batch = (t: number, retained: number[], scavengeMs = 10): GcBatch => ({
    t,
    scavenges: 2,
    scavengeMs,
    majors: retained.map((r) => ({ beforeMb: r + 10, retainedMb: r, externalMb: 3, ms: 4 })),
  });

  it('sums the batches flushed inside a window: median of the heap left, GC time per second', () => {
    const batches = [batch(1_000, [50]), batch(2_000, [30, 31]), batch(4_000, [32]), batch(12_000, [], 30), batch(13_000, [99])];
    expect(gcWindow(batches, 1_000, 11_000)).toEqual({ majors: 3, retainedMb: 31, externalMb: 3, scavengeMsPerSec: 2, majorMsPerSec: 1.2, memory: null });
    expect(gcWindow(batches, 4_000, 12_000)).toEqual({ majors: 0, retainedMb: null, externalMb: null, scavengeMsPerSec: 3.75, majorMsPerSec: 0, memory: null });
  });

  it('gives a window the memory the last flush inside it read, skipping flushes without one', () => {
    const memory = (rssMb: number): MemorySnapshot => ({ rssMb, heapCommittedMb: 60, spacesMb: { new_space: 32, old_space: 28 }, externalMb: 3, arrayBuffersMb: 1 });
    const batches = [{ ...batch(1_000, []), memory: memory(150) }, { ...batch(2_000, []), memory: memory(160) }, batch(3_000, []), { ...batch(12_000, []), memory: memory(170) }];
    expect(gcWindow(batches, 500, 11_000).memory?.rssMb).toBe(160);
    expect(gcWindow(batches, 2_000, 11_000).memory).toBeNull();
  });

  it('measures how fast the old generation filled: what each major GC found beyond what the one before left, over the time between the first and the last', () => {
    const major = (beforeMb: number, retainedMb: number) => ({ beforeMb, retainedMb, externalMb: 3, ms: 4 });
    const batches: GcBatch[] = [
      { t: 0, scavenges: 1, scavengeMs: 1, majors: [major(50, 40)] },
      { t: 5_000, scavenges: 1, scavengeMs: 1, majors: [] },
      { t: 10_000, scavenges: 1, scavengeMs: 1, majors: [major(45, 40)] },
      { t: 20_000, scavenges: 1, scavengeMs: 1, majors: [major(48, 41), major(42, 40)] },
    ];
    expect(oldGenerationGrowth(batches)).toBeCloseTo((5 + 8 + 1) / 20, 9);
    expect(oldGenerationGrowth(batches.slice(0, 2))).toBeNull();
    expect(oldGenerationGrowth([])).toBeNull();
  });

  it('reads what was written, skipping a line cut short, and nothing from a file not there', () => {
    const file = join(dir, 'partial.jsonl');
    writeFileSync(file, `${JSON.stringify(batch(1, [40]))}\n${JSON.stringify(batch(2, []))}\n{"t":3,"scav`);
    expect(readGcLog(file).map((b) => b.t)).toEqual([1, 2]);
    expect(readGcLog(join(dir, 'missing.jsonl'))).toEqual([]);
  });

  it('is written by the preload from what V8 reports after each collection: live objects raise it, dropping them lowers it', () => {
    const file = join(dir, 'watched.jsonl');
    // ~40 MB held across two forced major GCs and a flush, then dropped before two more and the next flush.
    const script = `
      globalThis.held = Array.from({ length: 400_000 }, (_, i) => ({ i, s: 'held-' + i }));
      gc(); gc();
      setTimeout(() => { globalThis.held = null; gc(); gc(); }, 2_300);
      setTimeout(() => {}, 4_600);`;
    const run = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--import', './bench/gc-watch.ts', '-e', script], {
      env: { ...process.env, BENCH_GC_LOG: file },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status, run.stderr).toBe(0);
    const majors = readGcLog(file).map((b) => b.majors.map((m) => m.retainedMb));
    const heldAt = majors.findIndex((m) => m.length > 0 && m.at(-1)! > 30);
    expect(heldAt, JSON.stringify(majors)).toBeGreaterThanOrEqual(0);
    const after = majors.slice(heldAt + 1).find((m) => m.length > 0);
    expect(after?.at(-1), JSON.stringify(majors)).toBeLessThan(20);
    // Each flush also read the process's memory: while ~40 MB were held V8 had committed at least that, inside RSS.
    const first = readGcLog(file)[heldAt]!.memory!;
    expect(first.heapCommittedMb, JSON.stringify(first)).toBeGreaterThan(30);
    expect(first.rssMb).toBeGreaterThan(first.heapCommittedMb);
    expect(Object.keys(first.spacesMb)).toEqual(expect.arrayContaining(['new_space', 'old_space', 'code_space']));
    expect(Object.values(first.spacesMb).reduce((a, mb) => a + mb, 0)).toBeCloseTo(first.heapCommittedMb, 6);
  });

  it('keeps no process alive: a program that ends before the first flush exits, and leaves no log', () => {
    const file = join(dir, 'short.jsonl');
    // spawnSync kills at the timeout, and the status is then null.
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--import', './bench/gc-watch.ts', '-e', 'void 0'], {
      env: { ...process.env, BENCH_GC_LOG: file },
      encoding: 'utf8',
      timeout: 30_000,
    });
    expect(run.status, run.stderr).toBe(0);
    expect(readGcLog(file)).toEqual([]);
  });
});
