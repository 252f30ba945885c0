import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { median } from '../bench/quantile.js';
import { p99Trend, slope } from '../bench/soak.js';

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
