import { createHash } from 'node:crypto';
import type { DatasetDef } from '../policy/types.js';
import { generalizers, sourceTransforms, type SourceTransform } from './vocabulary.js';

/** A quasi-identifier column: every attribute column of a dataset (aggregates and the pseudonym are not). */
export interface QuasiColumn {
  name: string;
  transform: SourceTransform;
}

export function quasiColumns(def: DatasetDef): QuasiColumn[] {
  return def.columns.flatMap((c) => (c.kind === 'attribute' ? [{ name: c.name, transform: sourceTransforms[c.source]![c.transform]! }] : []));
}

/** Values of the quasi-identifiers as the dataset first releases them (level 0), in quasiColumns order. */
export type QuasiValues = ReadonlyArray<string | null>;

export interface Group {
  values: QuasiValues;
  count: number;
}

/** Where a level-0 group ends up: released at some generalization level with these values, or suppressed. */
export type Placement = { level: number; values: QuasiValues } | { level: 'suppressed' };

/**
 * The release plan of one pull: for every level-0 quasi-identifier group,
 * the first generalization level at which it joins a released group of at
 * least k rows, or suppression. Groups are placed level by level among the
 * rows still unplaced, so every combination of released values occurs at
 * least k times in the release (local recoding), not merely in the source.
 */
export interface ReleasePlan {
  placement(values: QuasiValues): Placement;
  released: number;
  generalized: number;
  suppressed: number;
  /** Changes whenever any group would be released differently: binds cursors to one plan. */
  fingerprint: string;
}

export function planRelease(def: DatasetDef, groups: readonly Group[]): ReleasePlan {
  const columns = quasiColumns(def);
  const placements = new Map<string, Placement>();
  let unplaced = groups.filter((g) => g.count > 0);
  let released = 0;
  let generalized = 0;
  for (let level = 0; level <= def.generalization.length && unplaced.length > 0; level++) {
    const buckets = new Map<string, { values: QuasiValues; count: number; members: Group[] }>();
    for (const group of unplaced) {
      const values = generalize(def, columns, group.values, level);
      const key = keyOf(values);
      const bucket = buckets.get(key) ?? { values, count: 0, members: [] };
      bucket.count += group.count;
      bucket.members.push(group);
      buckets.set(key, bucket);
    }
    const next: Group[] = [];
    for (const bucket of buckets.values()) {
      if (bucket.count >= def.k) {
        for (const member of bucket.members) placements.set(keyOf(member.values), { level, values: bucket.values });
        released += bucket.count;
        if (level > 0) generalized += bucket.count;
      } else {
        next.push(...bucket.members);
      }
    }
    unplaced = next;
  }
  let suppressed = 0;
  for (const group of unplaced) {
    placements.set(keyOf(group.values), { level: 'suppressed' });
    suppressed += group.count;
  }
  const hash = createHash('sha256').update(`${def.name}\0${def.k}\0`);
  for (const key of [...placements.keys()].sort()) {
    const p = placements.get(key)!;
    hash.update(`${key}\0${p.level === 'suppressed' ? 's' : p.level}\n`);
  }
  return {
    // A group that appeared after the plan was made (a concurrent write) is withheld, never released unchecked.
    placement: (values) => placements.get(keyOf(values)) ?? { level: 'suppressed' },
    released,
    generalized,
    suppressed,
    fingerprint: hash.digest('base64url').slice(0, 22),
  };
}

/** The quasi-identifier values after the first `level` generalization steps. */
export function generalize(def: DatasetDef, columns: readonly QuasiColumn[], values: QuasiValues, level: number): QuasiValues {
  if (level === 0) return values;
  const out = [...values];
  for (const step of def.generalization.slice(0, level)) {
    for (const [column, name] of Object.entries(step)) {
      const i = columns.findIndex((c) => c.name === column);
      const value = out[i];
      if (i >= 0 && value !== null && value !== undefined) out[i] = generalizers[name]!.apply(value);
    }
  }
  return out;
}

function keyOf(values: QuasiValues): string {
  return JSON.stringify(values);
}
