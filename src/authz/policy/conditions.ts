import type { Principal } from '../principal.js';
import { isMemoryOnly, subjects, type FieldSpec, type ScalarField, type SubjectName } from '../subjects.js';
import type { Conditions } from './types.js';
import { isRecord, type Path, type YamlSource } from './yaml-source.js';

/**
 * The condition language: a MongoDB subset that the SQL translator and CASL's
 * matcher both understand. Anything outside it is a load error, so a policy
 * can never say something the database cannot enforce.
 */
const documentOperators = ['$and', '$or'] as const;
const fieldOperators = ['$eq', '$ne', '$in', '$nin', '$gt', '$gte', '$lt', '$lte', '$not'] as const;
const listOperators = new Set(['$in', '$nin']);

/** The only templates a condition value may be; replaced by the principal's attribute. */
export const principalTemplates: Readonly<Record<string, 'id' | 'department' | 'region'>> = {
  '${principal.id}': 'id',
  '${principal.department}': 'department',
  '${principal.region}': 'region',
};

/** Validates a rule's `conditions` against `subject`; reports problems on `src` and returns them if clean. */
export function checkConditions(src: YamlSource, subject: SubjectName, value: unknown, path: Path): Conditions | undefined {
  if (!isRecord(value) || Object.keys(value).length === 0) {
    src.fail(path, 'conditions must be a non-empty mapping');
    return undefined;
  }
  let clean = true;
  for (const [key, operand] of Object.entries(value)) {
    clean = checkEntry(src, subject, key, operand, [...path, key]) && clean;
  }
  return clean ? value : undefined;
}

function checkEntry(src: YamlSource, subject: SubjectName, key: string, operand: unknown, path: Path): boolean {
  if ((documentOperators as readonly string[]).includes(key)) {
    if (!Array.isArray(operand) || operand.length === 0) {
      src.fail(path, `${key} expects a non-empty list of conditions`);
      return false;
    }
    return operand.map((item, i) => checkConditions(src, subject, item, [...path, i]) !== undefined).every(Boolean);
  }
  if (key.startsWith('$')) {
    src.fail(path, `unknown operator "${key}" (allowed here: ${documentOperators.join(', ')} or a field name)`, true);
    return false;
  }
  const field = resolveConditionField(subject, key);
  if (typeof field === 'string') {
    src.fail(path, field, true);
    return false;
  }
  return checkOperand(src, field, operand, path);
}

/** The scalar field a dotted condition path names, or the reason it cannot be used. */
export function resolveConditionField(subject: SubjectName, dotted: string): ScalarField | string {
  const segments = dotted.split('.');
  let current = subject;
  for (const [i, name] of segments.entries()) {
    const fields: Record<string, FieldSpec | undefined> = subjects[current].fields;
    const spec = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (!spec) return `unknown field "${name}" of ${current}`;
    const last = i === segments.length - 1;
    if (spec.kind === 'scalar') {
      if (!last) return `"${name}" of ${current} is not a relation: cannot follow "${dotted}"`;
      if (!spec.column && !isMemoryOnly(current)) return `field "${name}" of ${current} has no plain column (encrypted): it cannot be used in a condition`;
      return spec;
    }
    if (last) return `"${name}" of ${current} is a relation: name one of its fields, e.g. "${name}.id"`;
    // To-many paths would mean "some child matches": not expressible as one SQL join, so refused.
    if (spec.cardinality !== 'one') return `relation "${name}" of ${current} is to-many: conditions can only follow to-one relations`;
    current = spec.subject;
  }
  return `empty field path "${dotted}"`;
}

function checkOperand(src: YamlSource, field: ScalarField, operand: unknown, path: Path): boolean {
  if (!isRecord(operand)) return checkScalar(src, field, operand, path);
  const keys = Object.keys(operand);
  if (keys.length === 0) {
    src.fail(path, 'an operator mapping must not be empty');
    return false;
  }
  let clean = true;
  for (const op of keys) {
    const at = [...path, op];
    if (!(fieldOperators as readonly string[]).includes(op)) {
      const why = op.startsWith('$')
        ? `unknown operator "${op}" (allowed: ${fieldOperators.join(', ')})`
        : `nested mapping under a field is not supported: use a dotted path or an operator`;
      src.fail(at, why, true);
      clean = false;
    } else if (op === '$not') {
      clean = (isRecord(operand[op]) ? checkOperand(src, field, operand[op], at) : fail(src, at, '$not expects an operator mapping')) && clean;
    } else if (listOperators.has(op)) {
      const list = operand[op];
      clean = (Array.isArray(list) && list.length > 0
        ? list.map((v, i) => checkScalar(src, field, v, [...at, i])).every(Boolean)
        : fail(src, at, `${op} expects a non-empty list`)) && clean;
    } else {
      clean = checkScalar(src, field, operand[op], at) && clean;
    }
  }
  return clean;
}

function checkScalar(src: YamlSource, field: ScalarField, value: unknown, path: Path): boolean {
  if (typeof value === 'string') {
    if (value.includes('${') && !Object.hasOwn(principalTemplates, value)) {
      return fail(src, path, `unknown template "${value}" (allowed: ${Object.keys(principalTemplates).join(', ')}, as the whole value)`);
    }
    if (field.type === 'number') return fail(src, path, 'this field is a number: the value must be a number');
    return true;
  }
  if (typeof value === 'number' && Number.isFinite(value)) {
    return field.type === 'number' ? true : fail(src, path, `this field is a ${field.type}: quote the value`);
  }
  return fail(src, path, 'condition values must be strings or numbers (null never matches: deny instead)');
}

function fail(src: YamlSource, path: Path, reason: string): false {
  src.fail(path, reason);
  return false;
}

/**
 * Replaces templates by the principal's attributes. Returns null when a
 * referenced attribute is missing: the rule must then be dropped (deny),
 * never turned into a condition that matches rows with a null column.
 */
export function interpolate(conditions: Conditions, principal: Principal): Conditions | null {
  let missing = false;
  const visit = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const attribute = Object.hasOwn(principalTemplates, value) ? principalTemplates[value] : undefined;
      if (!attribute) return value;
      const replacement = principal[attribute];
      if (replacement === null || replacement === undefined || replacement === '') missing = true;
      return replacement;
    }
    if (Array.isArray(value)) return value.map(visit);
    // Plain objects (not null-prototype): ucast checks `constructor === Object` for operator mappings.
    if (isRecord(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, visit(v)]));
    return value;
  };
  const result = visit(conditions) as Conditions;
  return missing ? null : result;
}
