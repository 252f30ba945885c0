/**
 * Preloaded into the full server with `--import` during a soak: V8's own GC
 * profiler (node:v8 GCProfiler) reports the heap right after every
 * collection, and every FLUSH_MS this appends one JSON line (a GcBatch) to the
 * file BENCH_GC_LOG names. What a major collection leaves in the old
 * generation is what the program still holds: a leak raises it, while RSS
 * also moves with what the allocator keeps and gives back. Nothing else in
 * the server changes; the profiler reads heap statistics at each collection
 * (tens per second at most under the soak's load).
 */
import { appendFileSync } from 'node:fs';
import { GCProfiler } from 'node:v8';
import type { GcBatch } from './gc-log.js';

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
  afterGC: { heapStatistics: { usedHeapSize: number; externalMemory: number }; heapSpaceStatistics: HeapSpace[] };
}

const MB = 1024 * 1024;

function batchOf(statistics: GcStatistic[]): GcBatch {
  const batch: GcBatch = { t: Date.now(), scavenges: 0, scavengeMs: 0, majors: [] };
  for (const s of statistics) {
    if (s.gcType === 'Scavenge') {
      batch.scavenges += 1;
      batch.scavengeMs += s.cost / 1000;
    } else if (s.gcType === 'MarkSweepCompact') {
      const young = s.afterGC.heapSpaceStatistics.find((h) => h.spaceName === 'new_space')?.spaceUsedSize ?? 0;
      batch.majors.push({
        retainedMb: (s.afterGC.heapStatistics.usedHeapSize - young) / MB,
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
