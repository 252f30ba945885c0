import { aggregates, directIdentifiers, generalizers, PSEUDONYM, sourceTransforms } from '../dataset/vocabulary.js';
import type { DatasetColumnDef, DatasetDef } from './types.js';
import { checkMap, isRecord, type Path, type YamlSource } from './yaml-source.js';

const datasetKeys = ['dataset', 'description', 'purpose', 'k', 'consent', 'columns', 'generalization'] as const;
const columnKeys = ['name', 'source', 'transform', 'aggregate', 'description'] as const;
export const datasetName = /^[a-z][a-z0-9_]*$/;
const columnName = /^[a-z][A-Za-z0-9]*$/;
const DEFAULT_K = 5;

export interface DatasetContext {
  expectedName: string;
  purposes: readonly string[];
}

/** Validates one dataset file; returns the dataset when the file is clean. */
export function checkDatasetFile(src: YamlSource, ctx: DatasetContext): DatasetDef | undefined {
  const top = checkMap(src, src.value, [], { allowed: datasetKeys, required: ['dataset', 'purpose', 'columns'] });
  if (!top) return undefined;
  let clean = Object.keys(top).every((k) => (datasetKeys as readonly string[]).includes(k));
  const { dataset, description, purpose, k, consent, columns, generalization } = top;
  if (dataset !== ctx.expectedName) {
    if (dataset !== undefined) src.fail(['dataset'], `dataset ${JSON.stringify(dataset)} does not match its file name (expected "${ctx.expectedName}")`);
    clean = false;
  }
  if (description !== undefined && typeof description !== 'string') clean = fail(src, ['description'], 'description must be a string');
  if (typeof purpose !== 'string' || !ctx.purposes.includes(purpose)) {
    if (purpose !== undefined) src.fail(['purpose'], `unknown purpose ${JSON.stringify(purpose)} (declared in purposes.yaml: ${ctx.purposes.join(', ')})`);
    clean = false;
  }
  if (k !== undefined && (typeof k !== 'number' || !Number.isInteger(k) || k < 2 || k > 1000)) clean = fail(src, ['k'], 'k must be an integer from 2 to 1000');
  if (consent !== undefined && consent !== 'required' && consent !== 'unless_withdrawn') clean = fail(src, ['consent'], 'consent must be required or unless_withdrawn');
  const cols = checkColumns(src, columns);
  const steps = cols ? checkGeneralization(src, generalization, cols) : undefined;
  if (!clean || !cols || !steps) return undefined;
  return {
    name: ctx.expectedName,
    ...(typeof description === 'string' ? { description } : {}),
    file: src.file,
    purpose: purpose as string,
    k: (k as number | undefined) ?? DEFAULT_K,
    consent: (consent as DatasetDef['consent'] | undefined) ?? 'required',
    columns: cols,
    generalization: steps,
  };
}

function checkColumns(src: YamlSource, value: unknown): DatasetColumnDef[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    if (value !== undefined) src.fail(['columns'], 'columns must be a non-empty list');
    return undefined;
  }
  const out: DatasetColumnDef[] = [];
  let clean = true;
  for (const [i, raw] of value.entries()) {
    const col = checkColumn(src, raw, ['columns', i]);
    if (!col) {
      clean = false;
      continue;
    }
    if (out.some((c) => c.name === col.name)) clean = fail(src, ['columns', i, 'name'], `duplicate column "${col.name}"`);
    out.push(col);
  }
  if (out.filter((c) => c.kind === 'pseudonym').length > 1) clean = fail(src, ['columns'], 'at most one pseudonym column');
  return clean ? out : undefined;
}

function checkColumn(src: YamlSource, raw: unknown, path: Path): DatasetColumnDef | undefined {
  const col = checkMap(src, raw, path, { allowed: columnKeys, required: ['name'] });
  if (!col) return undefined;
  if (!Object.keys(col).every((k) => (columnKeys as readonly string[]).includes(k))) return undefined;
  const { name, source, transform, aggregate } = col;
  if (typeof name !== 'string' || !columnName.test(name)) {
    if (name !== undefined) src.fail([...path, 'name'], 'column name must match [a-z][A-Za-z0-9]*');
    return undefined;
  }
  if ((source === undefined) === (aggregate === undefined)) {
    src.fail(path, 'a column has exactly one of source or aggregate');
    return undefined;
  }
  if (aggregate !== undefined) {
    if (transform !== undefined) return failed(src, [...path, 'transform'], 'an aggregate takes no transform');
    if (typeof aggregate !== 'string' || !Object.hasOwn(aggregates, aggregate)) {
      return failed(src, [...path, 'aggregate'], `unknown aggregate ${JSON.stringify(aggregate)} (allowed: ${Object.keys(aggregates).join(', ')})`);
    }
    return { name, kind: 'aggregate', aggregate, type: aggregates[aggregate]!.type };
  }
  if (typeof source !== 'string') return failed(src, [...path, 'source'], 'source must be a field name');
  if ((directIdentifiers as readonly string[]).includes(source)) {
    return failed(src, [...path, 'source'], `"${source}" identifies a person directly: no dataset may contain it`);
  }
  if (source === 'id') {
    if (transform !== PSEUDONYM) return failed(src, [...path, 'transform'], 'the customer id leaves a dataset only as transform: pseudonym');
    return { name, kind: 'pseudonym', type: 'string' };
  }
  const allowed = Object.hasOwn(sourceTransforms, source) ? sourceTransforms[source]! : undefined;
  if (!allowed) return failed(src, [...path, 'source'], `unknown source "${source}" (allowed: id, ${Object.keys(sourceTransforms).join(', ')})`);
  const names = Object.keys(allowed);
  const chosen = transform ?? (names.includes('as_is') ? 'as_is' : undefined);
  if (typeof chosen !== 'string' || !Object.hasOwn(allowed, chosen)) {
    return failed(src, [...path, transform === undefined ? 'source' : 'transform'], `${source} needs a transform: ${names.join(', ')}`);
  }
  return { name, kind: 'attribute', source, transform: chosen, type: 'string' };
}

function checkGeneralization(src: YamlSource, value: unknown, cols: DatasetColumnDef[]): Array<Record<string, string>> | undefined {
  if (value === undefined) return [];
  if (!Array.isArray(value)) return failed(src, ['generalization'], 'generalization must be a list of steps (column: generalizer)');
  let clean = true;
  const steps: Array<Record<string, string>> = [];
  for (const [i, step] of value.entries()) {
    if (!isRecord(step) || Object.keys(step).length === 0) {
      clean = fail(src, ['generalization', i], 'a step is a non-empty mapping of column → generalizer');
      continue;
    }
    for (const [column, gen] of Object.entries(step)) {
      const col = cols.find((c) => c.name === column);
      if (!col || col.kind !== 'attribute') {
        clean = fail(src, ['generalization', i, column], `"${column}" is not a quasi-identifier column of this dataset`);
        continue;
      }
      const g = typeof gen === 'string' && Object.hasOwn(generalizers, gen) ? generalizers[gen]! : undefined;
      if (!g) {
        clean = fail(src, ['generalization', i, column], `unknown generalizer ${JSON.stringify(gen)} (allowed: ${Object.keys(generalizers).join(', ')})`);
      } else if (!g.appliesTo.includes('*') && !g.appliesTo.includes(`${col.transform}:${col.source}`)) {
        clean = fail(src, ['generalization', i, column], `generalizer "${String(gen)}" does not apply to ${col.source} (${col.transform})`);
      }
    }
    steps.push(step as Record<string, string>);
  }
  return clean ? steps : undefined;
}

function fail(src: YamlSource, path: Path, reason: string): false {
  src.fail(path, reason);
  return false;
}

function failed(src: YamlSource, path: Path, reason: string): undefined {
  src.fail(path, reason);
  return undefined;
}
