/** Nearest-rank quantile (0 < q ≤ 1) of ascending values: the smallest value with at least q of them at or below it; NaN for none. */
export function nearestRank(sorted: readonly number[], q: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
}
