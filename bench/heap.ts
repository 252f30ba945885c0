/**
 * The V8 heap a custos pod gets, so that the bench's servers get the same.
 *
 * Node sizes V8's heap from the memory it can see: in a container, the
 * cgroup's limit (Node reads it through libuv). V8 gives the old generation a
 * quarter of that memory times two on 64-bit, capped at 4 GB: in the base
 * Deployment's 512Mi container, `heap_size_limit` read 352 MB with the image's
 * `--max-semi-space-size=32` (256 MB old generation + 3 × 32 MB young; session
 * 19, node 20 in a 512 MB memory cgroup here). On this bench's machine there is
 * no such limit, so V8 would size the heap from 24 GB and let the old
 * generation grow to several hundred MB before collecting it: full's RSS
 * reached 592 MB at S2 with 64 connections, where the pod would have been
 * killed at 512Mi, and the bench's RSS figures were not the pod's. The bench
 * therefore passes `--max-old-space-size` as the pod's Node would set it.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';

const UNITS: Record<string, number> = {
  '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40,
};

/** A Kubernetes memory quantity (`512Mi`, `1Gi`, `500M`, `268435456`) in bytes. */
export function quantityBytes(quantity: string): number {
  const found = /^(\d+(?:\.\d+)?)(|k|M|G|T|Ki|Mi|Gi|Ti)$/.exec(quantity.trim());
  if (!found) throw new Error(`not a Kubernetes memory quantity: ${quantity}`);
  return Math.round(Number(found[1]) * UNITS[found[2]!]!);
}

/** V8's old-generation limit, in MB, for a process that sees `bytes` of memory (64-bit: a quarter, times two, at most 4 GB). */
export function oldSpaceMbFor(bytes: number): number {
  return Math.min(4096, Math.floor(bytes / 4 * 2 / 2 ** 20));
}

/** The memory limit of the custos container in a Deployment manifest (multi-document YAML). */
export function containerMemoryLimit(manifest: string, deployment = 'custos', container = 'custos'): string {
  for (const doc of parseAllDocuments(manifest)) {
    const object = doc.toJS() as { kind?: string; metadata?: { name?: string }; spec?: { template?: { spec?: { containers?: Array<{ name: string; resources?: { limits?: { memory?: string } } }> } } } } | null;
    if (object?.kind !== 'Deployment' || object.metadata?.name !== deployment) continue;
    const memory = object.spec?.template?.spec?.containers?.find((c) => c.name === container)?.resources?.limits?.memory;
    if (memory) return memory;
  }
  throw new Error(`no memory limit for container ${container} of Deployment ${deployment}`);
}

/** `--max-old-space-size` as Node sets it in the base Deployment's container, unless the options already set it. */
export function podHeapOption(repoRoot: string, nodeOptions: string): string | undefined {
  if (/--max-old-space-size[= ]/.test(nodeOptions)) return undefined;
  const limit = containerMemoryLimit(readFileSync(join(repoRoot, 'k8s', 'base', 'deployment.yaml'), 'utf8'));
  return `--max-old-space-size=${oldSpaceMbFor(quantityBytes(limit))}`;
}
