import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { gcWindow, oldGenerationGrowth, readGcLog, type GcBatch } from '../bench/gc-log.js';
import { heapTrend } from '../bench/soak.js';

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

describe('the GC log', () => {
  const batch = (t: number, retained: number[], scavengeMs = 10): GcBatch => ({
    t,
    scavenges: 2,
    scavengeMs,
    majors: retained.map((r) => ({ beforeMb: r + 10, retainedMb: r, externalMb: 3, ms: 4 })),
  });

  it('sums the batches flushed inside a window: median of the heap left, GC time per second', () => {
    const batches = [batch(1_000, [50]), batch(2_000, [30, 31]), batch(4_000, [32]), batch(12_000, [], 30), batch(13_000, [99])];
    expect(gcWindow(batches, 1_000, 11_000)).toEqual({ majors: 3, retainedMb: 31, externalMb: 3, scavengeMsPerSec: 2, majorMsPerSec: 1.2 });
    expect(gcWindow(batches, 4_000, 12_000)).toEqual({ majors: 0, retainedMb: null, externalMb: null, scavengeMsPerSec: 3.75, majorMsPerSec: 0 });
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
