import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { containerMemoryLimit, oldSpaceMbFor, podHeapOption, quantityBytes } from '../bench/heap.js';

/** The bench gives its servers the V8 heap a custos pod gets (bench/heap.ts). */

describe('the pod heap', () => {
  it('reads Kubernetes memory quantities', () => {
    expect(quantityBytes('512Mi')).toBe(512 * 2 ** 20);
    expect(quantityBytes('1Gi')).toBe(2 ** 30);
    expect(quantityBytes('500M')).toBe(500e6);
    expect(quantityBytes('268435456')).toBe(268435456);
    for (const bad of ['512 MB', '', 'Mi', '-1Gi', '1.5.0Gi']) expect(() => quantityBytes(bad), bad).toThrow(/quantity/);
  });

  it('gives the old generation half of what the process sees, at most 4 GB', () => {
    expect(oldSpaceMbFor(quantityBytes('512Mi'))).toBe(256);
    expect(oldSpaceMbFor(quantityBytes('384Mi'))).toBe(192);
    expect(oldSpaceMbFor(quantityBytes('1Gi'))).toBe(512);
    expect(oldSpaceMbFor(24 * 2 ** 30)).toBe(4096);
    fc.assert(
      fc.property(fc.integer({ min: 2 ** 26, max: 2 ** 36 }), fc.integer({ min: 0, max: 2 ** 30 }), (bytes, more) => {
        expect(oldSpaceMbFor(bytes)).toBeLessThanOrEqual(bytes / 2 / 2 ** 20);
        expect(oldSpaceMbFor(bytes + more)).toBeGreaterThanOrEqual(oldSpaceMbFor(bytes));
      }),
    );
  });

  it('finds the custos container limit of the base Deployment', () => {
    expect(containerMemoryLimit(readFileSync('k8s/base/deployment.yaml', 'utf8'))).toBe('512Mi');
    expect(() => containerMemoryLimit('kind: Service\nmetadata: {name: custos}\n')).toThrow(/no memory limit/);
    expect(podHeapOption('.', '--max-semi-space-size=32')).toBe('--max-old-space-size=256');
    expect(podHeapOption('.', '--max-semi-space-size=32 --max-old-space-size=300')).toBeUndefined();
  });

  it('sizes V8 as Node did in a 512 MB memory cgroup with the image options: a 352 MB heap', () => {
    const run = spawnSync(process.execPath, ['--max-semi-space-size=32', '--max-old-space-size=256', '-p', "require('v8').getHeapStatistics().heap_size_limit"], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(Number(run.stdout.trim()) / 2 ** 20).toBeCloseTo(352, 0);
  });
});
