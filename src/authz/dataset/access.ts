import { subject as tag } from '@casl/ability';
import { BadUserInputError, ConflictError, ForbiddenError } from '../../errors.js';
import type { DatasetDef } from '../policy/types.js';
import type { RequestAuthz } from '../request-authz.js';
import type { ReleasePlan } from './anonymity.js';
import { quasiColumns } from './anonymity.js';
import { aggregates, sourceTransforms } from './vocabulary.js';

/** The dataset `name` if the caller's policy lets them read it (to page it, ask for it, or pull it in bulk), else FORBIDDEN. */
export function datasetFor(authz: RequestAuthz, name: string): DatasetDef {
  const def = authz.bundle.datasets.get(name);
  if (!def) throw new BadUserInputError('unknown dataset (the `datasets` query lists the ones you may read)', { argument: 'name' });
  if (!authz.ability(def.purpose).can('read', tag('Dataset', { name: def.name, purpose: def.purpose }))) {
    throw new ForbiddenError(`not permitted to read dataset ${def.name}`, { subject: 'Dataset', action: 'read' });
  }
  return def;
}

/** Datasets the caller may read. */
export function readableDatasets(authz: RequestAuthz): DatasetDef[] {
  return [...authz.bundle.datasets.values()].filter((d) => authz.ability(d.purpose).can('read', tag('Dataset', { name: d.name, purpose: d.purpose })));
}

/** A cursor's plan must be the current plan: otherwise rows could be released under two different plans. */
export function assertSamePlan(plan: ReleasePlan, fingerprint: string | null): void {
  if (fingerprint !== plan.fingerprint) {
    throw new ConflictError('the dataset changed since this cursor was issued: start the pull again', { reason: 'DATASET_CHANGED' });
  }
}

export function describeColumns(def: DatasetDef) {
  const quasi = new Set(quasiColumns(def).map((q) => q.name));
  return def.columns.map((c) => ({
    name: c.name,
    type: c.type === 'int' ? 'INT' : 'STRING',
    quasiIdentifier: quasi.has(c.name),
    derivation:
      c.kind === 'pseudonym'
        ? `keyed pseudonym of the customer for ${def.name}`
        : c.kind === 'attribute'
          ? sourceTransforms[c.source]![c.transform]!.description
          : aggregates[c.aggregate]!.description,
  }));
}
