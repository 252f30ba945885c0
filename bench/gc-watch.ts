/**
 * Preloaded into the full server with `--import` during a soak: V8's own GC
 * profiler (node:v8 GCProfiler) reports the heap right after every
 * collection, and every FLUSH_MS this appends one JSON line (a GcBatch) to the
 * file BENCH_GC_LOG names. What a major collection leaves in the old
 * generation is what the program still holds: a leak raises it, while RSS
 * also moves with what the allocator keeps and gives back. Nothing else in
 * the server changes; the profiler reads heap statistics at each collection
 * (tens per second at most under the soak's load), and each flush reads the
 * process's memory once (memoryNow).
 */
import { appendFileSync } from 'node:fs';
import { GCProfiler, getHeapSpaceStatistics } from 'node:v8';
import { YOUNG_SPACES, type GcBatch, type MemorySnapshot } from './gc-log.js';

const file = process.env.BENCH_GC_LOG;
const FLUSH_MS = 2_000;

interface HeapSpace {
  spaceName: string;
  spaceUsedSize: number;
}
interface GcStatistic {
  gcType: string;
  /** Microseconds. */
  cost: number;
  beforeGC: HeapAt;
  afterGC: HeapAt;
}
interface HeapAt {
  heapStatistics: { usedHeapSize: number; externalMemory: number };
  heapSpaceStatistics: HeapSpace[];
}

const MB = 1024 * 1024;

/** Used heap outside the young generation, MB. */
function oldMb(at: HeapAt): number {
  const young = at.heapSpaceStatistics.filter((h) => YOUNG_SPACES.includes(h.spaceName)).reduce((a, h) => a + h.spaceUsedSize, 0);
  return (at.heapStatistics.usedHeapSize - young) / MB;
}

/**
 * Where the process's resident memory is at this moment: what V8 has
 * committed for its heap, space by space, and what lies outside it. Lets the
 * soak tell a young generation growing to its configured size, or compiled
 * code piling up, from memory held by native code or the allocator.
 */
function memoryNow(): MemorySnapshot {
  const usage = process.memoryUsage();
  const spaces: Record<string, number> = {};
  let heapCommitted = 0;
  for (const space of getHeapSpaceStatistics()) {
    spaces[space.space_name] = space.physical_space_size / MB;
    heapCommitted += space.physical_space_size;
  }
  return {
    rssMb: usage.rss / MB,
    heapCommittedMb: heapCommitted / MB,
    spacesMb: spaces,
    externalMb: usage.external / MB,
    arrayBuffersMb: usage.arrayBuffers / MB,
  };
}

function batchOf(statistics: GcStatistic[]): GcBatch {
  const batch: GcBatch = { t: Date.now(), scavenges: 0, scavengeMs: 0, majors: [], memory: memoryNow() };
  for (const s of statistics) {
    if (s.gcType === 'Scavenge') {
      batch.scavenges += 1;
      batch.scavengeMs += s.cost / 1000;
    } else if (s.gcType === 'MarkSweepCompact') {
      batch.majors.push({
        beforeMb: oldMb(s.beforeGC),
        retainedMb: oldMb(s.afterGC),
        externalMb: s.afterGC.heapStatistics.externalMemory / MB,
        ms: s.cost / 1000,
      });
    }
  }
  return batch;
}

if (file) {
  let profiler = new GCProfiler();
  profiler.start();
  const timer = setInterval(() => {
    const result = profiler.stop() as { statistics: GcStatistic[] } | undefined;
    profiler = new GCProfiler();
    profiler.start();
    try {
      appendFileSync(file, `${JSON.stringify(batchOf(result?.statistics ?? []))}\n`);
    } catch {
      // The bench reads what arrived; a full disk must not take the server down.
    }
  }, FLUSH_MS);
  timer.unref();
}
