/**
 * Deterministic randomness for the seed. Every entity draws from its own
 * stream keyed by (seed, stream, index), so the values of customer i do not
 * depend on how many customers came before it: tests can regenerate any one
 * customer without replaying the whole seed.
 */
export type Rng = () => number;

/** mulberry32: tiny, fast and good enough for test data (not for anything secret). */
export function mulberry32(state: number): Rng {
  let a = state | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function mixRound(h: number, part: number): number {
  h = Math.imul(h ^ (part | 0), 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/**
 * Mixes integers into one 32-bit value (a murmur3 finalizer round per part),
 * so nearby keys give unrelated streams. Each round is a bijection, hence for
 * fixed other parts distinct values of one part give distinct results.
 * Fixed arity on purpose: a rest parameter allocates on a path run millions of times.
 */
export function mix(a: number, b: number, c = 0, d = 0): number {
  return mixRound(mixRound(mixRound(mixRound(0x9e3779b9, a), b), c), d) >>> 0;
}

/** Stream ids: one per kind of entity, so adding draws to one kind never shifts another. */
export const Stream = { customer: 1, orders: 2, interactions: 3, consents: 4, rep: 5 } as const;

export function streamFor(seed: number, stream: number, index: number): Rng {
  return mulberry32(mix(seed, stream, index));
}

/** An integer in [min, max], both inclusive. */
export function int(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

export function pick<T>(rng: Rng, items: readonly T[]): T {
  const item = items[Math.floor(rng() * items.length)];
  if (item === undefined) throw new RangeError('pick from an empty list');
  return item;
}

/** Picks from [value, weight] pairs in proportion to the weights. */
export function weighted<T>(rng: Rng, items: ReadonlyArray<readonly [T, number]>): T {
  const total = items.reduce((sum, [, w]) => sum + w, 0);
  let r = rng() * total;
  for (const [value, w] of items) {
    r -= w;
    if (r < 0) return value;
  }
  return items[items.length - 1]![0];
}

/**
 * A bijection on [0, 10^(2·halfDigits)): a four-round decimal Feistel network
 * keyed by `key`. Distinct indexes give distinct outputs, so phone numbers
 * and email local parts derived from a customer index never collide, and
 * neighbouring indexes give unrelated-looking numbers.
 */
export function permuteDigits(index: number, halfDigits: number, key: number): number {
  const half = 10 ** halfDigits;
  let left = Math.floor(index / half) % half;
  let right = index % half;
  for (let round = 0; round < 4; round++) {
    [left, right] = [right, (left + (mix(key, round, right) % half)) % half];
  }
  return left * half + right;
}

const UUID_KINDS = { customer: 0, order: 1, interaction: 2, consent: 3 } as const;
export type UuidKind = keyof typeof UUID_KINDS;

// Table lookups: number.toString(16) per word costs several times more over millions of ids.
const NIBBLE = '0123456789abcdef';
const HEX = Array.from({ length: 256 }, (_, i) => NIBBLE[i >>> 4]! + NIBBLE[i & 15]!);
const byte = (n: number, shift: number) => HEX[(n >>> shift) & 255]!;
const hex8 = (n: number) => byte(n, 24) + byte(n, 16) + byte(n, 8) + byte(n, 0);

/**
 * A stable, random-looking UUID (version 4 layout) for the `sub`-th entity of
 * `kind` under customer `index`. Unique by construction, not by luck: the
 * first 32 bits are a bijective scramble of (kind, index < 2^20, sub < 2^10),
 * and the version and variant bits never touch them. A hash such as SHA-1
 * would do too, but costs ten times more over millions of rows.
 */
export function uuidFor(seed: number, kind: UuidKind, index: number, sub = 0): string {
  if (index >= 2 ** 20 || sub >= 2 ** 10) throw new RangeError('uuidFor: index or sub out of range');
  const tag = ((UUID_KINDS[kind] << 30) | (index << 10) | sub) >>> 0;
  const b = mix(tag, seed, 1);
  const c = mix(tag, seed, 2);
  return (
    `${hex8(mix(seed, tag))}-${byte(b, 24)}${byte(b, 16)}-4${NIBBLE[(b >>> 8) & 15]}${byte(b, 0)}-` +
    `${NIBBLE[8 | ((c >>> 28) & 3)]}${NIBBLE[(c >>> 24) & 15]}${byte(c, 16)}-${byte(c, 8)}${byte(c, 0)}${hex8(mix(tag, seed, 3))}`
  );
}
