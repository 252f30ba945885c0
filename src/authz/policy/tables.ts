import { subjectNames, subjects, type SubjectName } from '../subjects.js';
import { maskStrategies, type MaskSpec, type MaskStrategyName, type MaskingTable } from './types.js';
import { checkMap, isRecord, type YamlSource } from './yaml-source.js';

const purposeId = /^[a-z_]+$/;

/** Validates purposes.yaml (`purposes: [{id, description}]`) and returns the ids. */
export function checkPurposes(src: YamlSource): string[] {
  const top = checkMap(src, src.value, [], { allowed: ['purposes'], required: ['purposes'] });
  const list = top?.purposes;
  if (!top || list === undefined) return [];
  if (!Array.isArray(list) || list.length === 0) {
    src.fail(['purposes'], 'purposes must be a non-empty list');
    return [];
  }
  const ids: string[] = [];
  for (const [i, item] of list.entries()) {
    const entry = checkMap(src, item, ['purposes', i], { allowed: ['id', 'description'], required: ['id', 'description'] });
    if (!entry) continue;
    const { id, description } = entry;
    if (typeof id !== 'string' || !purposeId.test(id)) {
      src.fail(['purposes', i, 'id'], 'purpose id must match [a-z_]+');
    } else if (ids.includes(id)) {
      src.fail(['purposes', i, 'id'], `duplicate purpose "${id}"`);
    } else {
      ids.push(id);
    }
    if (description !== undefined && (typeof description !== 'string' || description.trim() === '')) {
      src.fail(['purposes', i, 'description'], 'description must be a non-empty string');
    }
  }
  return ids;
}

/** Validates masking.yaml (subject → field → {strategy, requiresPurpose?}). */
export function checkMasking(src: YamlSource): MaskingTable {
  const table: MaskingTable = {};
  if (src.value === null || src.value === undefined) return table;
  const top = checkMap(src, src.value, [], { allowed: subjectNames });
  if (!top) return table;
  for (const [name, fields] of Object.entries(top)) {
    if (!(subjectNames as string[]).includes(name)) continue; // reported by checkMap as unknown key
    const subject = name as SubjectName;
    if (!isRecord(fields)) {
      src.fail([subject], 'expected a mapping of field → masking');
      continue;
    }
    const specs: Record<string, MaskSpec> = {};
    for (const [field, raw] of Object.entries(fields)) {
      const spec = checkMaskEntry(src, subject, field, raw);
      if (spec) specs[field] = spec;
    }
    table[subject] = specs;
  }
  return table;
}

function checkMaskEntry(src: YamlSource, subject: SubjectName, field: string, raw: unknown): MaskSpec | undefined {
  const path = [subject, field];
  const fieldSpecs: Record<string, { kind: string } | undefined> = subjects[subject].fields;
  const fieldSpec = Object.hasOwn(fieldSpecs, field) ? fieldSpecs[field] : undefined;
  if (!fieldSpec) {
    src.fail(path, `unknown field "${field}" of ${subject}`, true);
    return undefined;
  }
  if (fieldSpec.kind !== 'scalar') {
    src.fail(path, `"${field}" of ${subject} is a relation: only scalar fields can be masked`, true);
    return undefined;
  }
  const entry = checkMap(src, raw, path, { allowed: ['strategy', 'requiresPurpose'], required: ['strategy'] });
  if (!entry) return undefined;
  const { strategy, requiresPurpose } = entry;
  if (typeof strategy !== 'string' || !(maskStrategies as readonly string[]).includes(strategy)) {
    if (strategy !== undefined) src.fail([...path, 'strategy'], `unknown masking strategy ${JSON.stringify(strategy)} (allowed: ${maskStrategies.join(', ')})`);
    return undefined;
  }
  if (requiresPurpose !== undefined && typeof requiresPurpose !== 'boolean') {
    src.fail([...path, 'requiresPurpose'], 'requiresPurpose must be true or false');
    return undefined;
  }
  return { strategy: strategy as MaskStrategyName, requiresPurpose: requiresPurpose ?? false };
}
