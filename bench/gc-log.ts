/** The soak's GC log (written by bench/gc-watch.ts in the server): reading it, and what it says per window. */
import { existsSync, readFileSync } from 'node:fs';
import { median } from './quantile.js';

/** One major (mark-sweep-compact) collection, as the heap stood right after it. */
export interface MajorGc {
  /** Used heap outside the young generation when it began: what was promoted or allocated there since the last one, and what it left. */
  beforeMb: number;
  /** Used heap outside the young generation after it: what the program still holds. */
  retainedMb: number;
  /** Memory outside the heap that V8 accounts for (Buffers, ArrayBuffers). */
  externalMb: number;
  ms: number;
}

/** The server's memory at one moment, MB: resident, and of it what V8 committed for its heap. */
export interface MemorySnapshot {
  rssMb: number;
  /** Physical memory of all heap spaces together. */
  heapCommittedMb: number;
  /** The same per space (new_space, old_space, code_space, large_object_space, …). */
  spacesMb: Record<string, number>;
  /** Memory outside the heap that V8 accounts for (Buffers, ArrayBuffers), and the ArrayBuffers' share of it. */
  externalMb: number;
  arrayBuffersMb: number;
}

/** V8's heap spaces of the young generation, and of compiled code. */
export const YOUNG_SPACES: readonly string[] = ['new_space', 'new_large_object_space'];
export const CODE_SPACES: readonly string[] = ['code_space', 'code_large_object_space'];

/** What a snapshot's named spaces hold together, MB. */
export function spacesTotalMb(m: MemorySnapshot, names: readonly string[]): number {
  return names.reduce((a, n) => a + (m.spacesMb[n] ?? 0), 0);
}

/** What the server's collector did over one flush interval, ending at `t` (epoch ms), and its memory then. */
export interface GcBatch {
  t: number;
  scavenges: number;
  scavengeMs: number;
  majors: MajorGc[];
  /** Absent in logs written before session 18. */
  memory?: MemorySnapshot;
}

/** The collector over one soak window. */
export interface GcWindow {
  majors: number;
  /** Median over the window's major collections of what each left; null when none ran in the window. */
  retainedMb: number | null;
  externalMb: number | null;
  /** Time in collections per second of the window, ms. */
  scavengeMsPerSec: number;
  majorMsPerSec: number;
  /** The server's memory at the last flush within the window (null: none carried it). */
  memory: MemorySnapshot | null;
}

/** The batches written so far; a line cut short by a write under way is skipped. */
export function readGcLog(file: string): GcBatch[] {
  if (!existsSync(file)) return [];
  const out: GcBatch[] = [];
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (!line) continue;
    try {
      out.push(JSON.parse(line) as GcBatch);
    } catch {
      // Only the last line can be partial.
    }
  }
  return out;
}

/** The batches flushed within (fromMs, toMs], summed as one window. */
export function gcWindow(batches: GcBatch[], fromMs: number, toMs: number): GcWindow {
  const inside = batches.filter((b) => b.t > fromMs && b.t <= toMs);
  const majors = inside.flatMap((b) => b.majors);
  const sec = Math.max(1e-9, (toMs - fromMs) / 1000);
  return {
    majors: majors.length,
    retainedMb: majors.length ? median(majors.map((m) => m.retainedMb)) : null,
    externalMb: majors.length ? median(majors.map((m) => m.externalMb)) : null,
    scavengeMsPerSec: inside.reduce((a, b) => a + b.scavengeMs, 0) / sec,
    majorMsPerSec: majors.reduce((a, m) => a + m.ms, 0) / sec,
    memory: inside.findLast((b) => b.memory)?.memory ?? null,
  };
}

/**
 * How fast the old generation filled between major collections, MB/s: what
 * each collection found there beyond what the one before had left (objects
 * promoted from the young generation, and large ones allocated in place),
 * over the time from the first to the last collection in the batches. null
 * with fewer than two. Batches carry their flush time only, so the span is
 * known to a flush interval (2 s) at each end.
 */
export function oldGenerationGrowth(batches: GcBatch[]): number | null {
  let previous: MajorGc | undefined;
  let grown = 0;
  let firstT: number | undefined;
  let lastT = 0;
  for (const batch of batches) {
    for (const major of batch.majors) {
      if (previous) grown += major.beforeMb - previous.retainedMb;
      else firstT = batch.t;
      previous = major;
      lastT = batch.t;
    }
  }
  if (firstT === undefined || lastT <= firstT) return null;
  return grown / ((lastT - firstT) / 1000);
}
