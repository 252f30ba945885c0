import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

/**
 * postgres.js keeps its pool's connections in queues (src/queue.js). As
 * published (3.4.9), `shift` only blanked the slot it took and reset the array
 * when the queue ran empty. The queue of idle connections never runs empty
 * while a pool has more connections than it needs at once, so under steady
 * load it kept one slot per query for the life of the process: ~10 bytes a
 * query, ~2 MB over a 30-minute soak at 100 req/s (bench/HISTORY.md, "Earlier soaks").
 * patches/postgres+3.4.9.patch (applied by `npm ci` through patch-package)
 * drops the used slots; these tests hold the three builds the package ships
 * to it.
 */

interface Queue<T> {
  readonly length: number;
  push(x: T): T;
  shift(): T | undefined;
  remove(x: T): T | null;
}
type QueueFactory = <T>(initial?: T[]) => Queue<T>;

/** A build's queue.js, by file: the package exports only its entry points. */
const queueFile = (dir: string) => new URL(`../node_modules/postgres/${dir}/queue.js`, import.meta.url);

const builds: Array<[string, () => Promise<QueueFactory>]> = [
  ['src (ESM, what custos imports)', async () => ((await import(queueFile('src').href)) as { default: QueueFactory }).default],
  ['cf/src (ESM, workerd)', async () => ((await import(queueFile('cf/src').href)) as { default: QueueFactory }).default],
  ['cjs/src (CommonJS)', () => Promise.resolve(createRequire(import.meta.url)(fileURLToPath(queueFile('cjs/src'))) as QueueFactory)],
];

type Op = { kind: 'push'; value: number } | { kind: 'shift' } | { kind: 'remove'; value: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 5, arbitrary: fc.integer({ min: 0, max: 20 }).map((value): Op => ({ kind: 'push', value })) },
  { weight: 4, arbitrary: fc.constant<Op>({ kind: 'shift' }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 20 }).map((value): Op => ({ kind: 'remove', value })) },
);

/** A forced full collection: the flag, then V8's gc function taken from a fresh context. */
function collect(): void {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
}

describe.each(builds)("postgres.js's connection queue, %s", (_name, load) => {
  it('still behaves as a FIFO queue with removal, as an array does, over any sequence of operations', async () => {
    const Queue = await load();
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 20 }), { maxLength: 5 }), fc.array(op, { maxLength: 400 }), (initial, ops) => {
        // The same objects on both sides, as connections are: remove finds them by identity.
        const model = initial.map((v) => ({ v }));
        const queue = Queue(model);
        for (const o of ops) {
          if (o.kind === 'push') {
            const item = { v: o.value };
            expect(queue.push(item)).toBe(item);
            model.push(item);
          } else if (o.kind === 'shift') {
            expect(queue.shift()).toBe(model.shift());
          } else {
            const target = model.find((m) => m.v === o.value);
            if (target) {
              expect(queue.remove(target)).toBe(target);
              model.splice(model.indexOf(target), 1);
            } else expect(queue.remove({ v: o.value })).toBeNull();
          }
          expect(queue.length).toBe(model.length);
        }
      }),
    );
  });

  it('keeps no used slot while it never runs empty (an idle connection always waiting)', async () => {
    const Queue = await load();
    // Two idle connections: as the pool does per query, the one at the head is taken and goes back at the tail.
    const queue = Queue<object>([{}, {}]);
    collect();
    const before = process.memoryUsage().heapUsed;
    for (let i = 0; i < 1_000_000; i++) queue.push(queue.shift()!);
    collect();
    const grown = process.memoryUsage().heapUsed - before;
    // As published, the array held all 1,000,000 slots: 8 MB.
    expect(grown).toBeLessThan(2 * 1024 * 1024);
    expect(queue.length).toBe(2);
  });
});
