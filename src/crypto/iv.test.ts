import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { freshIv } from './iv.js';

describe('freshIv', () => {
  it('gives the length asked, and never the same 12 bytes twice across many refills of its buffer', () => {
    const seen = new Set<string>();
    // 20,000 IVs of 12 bytes: ~60 refills of the 4 kB buffer, each ending with bytes too few for an IV.
    for (let i = 0; i < 20_000; i++) {
      const iv = freshIv(12);
      expect(iv.length).toBe(12);
      seen.add(iv.toString('hex'));
    }
    expect(seen.size).toBe(20_000);
  });

  it('hands out every byte once, whatever the sizes asked in turn', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 50, maxLength: 400 }), (sizes) => {
        const ivs = sizes.map((n) => freshIv(n));
        ivs.forEach((iv, i) => expect(iv.length).toBe(sizes[i]));
        // Handing out overlapping bytes would repeat the 8-byte windows they share; random 64-bit windows do not repeat.
        const windows = new Set<string>();
        let count = 0;
        for (const iv of ivs) {
          for (let at = 0; at + 8 <= iv.length; at += 8) {
            windows.add(iv.subarray(at, at + 8).toString('hex'));
            count += 1;
          }
        }
        expect(windows.size).toBe(count);
      }),
      { numRuns: 50 },
    );
  });

  it('returns a copy: later draws and refills leave an IV already handed out as it was', () => {
    const iv = freshIv(16);
    const before = Buffer.from(iv);
    for (let i = 0; i < 1_000; i++) freshIv(64);
    expect(iv.equals(before)).toBe(true);
    // And writing into an IV changes no later one.
    const a = freshIv(12);
    a.fill(0);
    for (let i = 0; i < 1_000; i++) expect(freshIv(12).equals(Buffer.alloc(12))).toBe(false);
  });

  it('refuses sizes it was not made for', () => {
    for (const n of [0, -1, 65, 1.5, Number.NaN]) expect(() => freshIv(n)).toThrow(RangeError);
  });
});
