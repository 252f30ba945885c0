import { actions, subjectNames, subjects, type Action, type SubjectName } from '../subjects.js';
import { checkConditions } from './conditions.js';
import type { MaskingTable, RoleDef, RuleDef } from './types.js';
import { checkMap, checkStringList, type Path, type YamlSource } from './yaml-source.js';

const roleKeys = ['role', 'description', 'rules'] as const;
const ruleKeys = ['action', 'subject', 'fields', 'conditions', 'purposes', 'inverted', 'reason'] as const;
export const roleName = /^[a-z][a-z0-9_]*$/;

export interface RoleContext {
  /** The role the file name promises. */
  expectedRole: string;
  purposes: readonly string[];
  masking: MaskingTable;
}

/** Validates one role file; returns the role when the file is clean. */
export function checkRoleFile(src: YamlSource, ctx: RoleContext): RoleDef | undefined {
  const top = checkMap(src, src.value, [], { allowed: roleKeys, required: ['role', 'rules'] });
  if (!top) return undefined;
  let clean = true;
  const { role, description, rules } = top;
  if (typeof role !== 'string' || !roleName.test(role)) {
    if (role !== undefined) src.fail(['role'], 'role must be a name matching [a-z][a-z0-9_]*');
    clean = false;
  } else if (role !== ctx.expectedRole) {
    src.fail(['role'], `role "${role}" does not match its file name (expected "${ctx.expectedRole}")`);
    clean = false;
  }
  if (description !== undefined && typeof description !== 'string') {
    src.fail(['description'], 'description must be a string');
    clean = false;
  }
  if (!Array.isArray(rules)) {
    if (rules !== undefined) src.fail(['rules'], 'rules must be a list (it may be empty)');
    return undefined;
  }
  const defs = rules.map((rule, i) => checkRule(src, rule, ['rules', i], ctx));
  if (!clean || defs.some((d) => d === undefined)) return undefined;
  return { name: ctx.expectedRole, description: description as string | undefined, file: src.file, rules: defs as RuleDef[] };
}

function checkRule(src: YamlSource, raw: unknown, path: Path, ctx: RoleContext): RuleDef | undefined {
  const rule = checkMap(src, raw, path, { allowed: ruleKeys, required: ['action', 'subject'] });
  if (!rule) return undefined;
  const actionList = rule.action === undefined ? undefined : checkActions(src, rule.action, [...path, 'action']);
  const subject = rule.subject === undefined ? undefined : checkSubject(src, rule.subject, [...path, 'subject']);
  if (!actionList || !subject) return undefined;
  const def: RuleDef = { actions: actionList, subject, inverted: false, origin: { file: src.file, line: src.lineOf(path) } };
  let clean = Object.keys(rule).every((k) => (ruleKeys as readonly string[]).includes(k));
  if (rule.fields !== undefined) clean = assign(def, 'fields', checkFields(src, subject, rule.fields, [...path, 'fields'])) && clean;
  if (rule.conditions !== undefined) clean = assign(def, 'conditions', checkConditions(src, subject, rule.conditions, [...path, 'conditions'])) && clean;
  if (rule.purposes !== undefined) clean = assign(def, 'purposes', checkPurposeList(src, rule.purposes, [...path, 'purposes'], ctx)) && clean;
  if (rule.inverted !== undefined) {
    if (typeof rule.inverted === 'boolean') def.inverted = rule.inverted;
    else clean = fail(src, [...path, 'inverted'], 'inverted must be true or false');
  }
  if (rule.reason !== undefined) {
    if (typeof rule.reason === 'string') def.reason = rule.reason;
    else clean = fail(src, [...path, 'reason'], 'reason must be a string');
  }
  return clean && checkSemantics(src, def, path, ctx) ? def : undefined;
}

function assign<K extends 'fields' | 'conditions' | 'purposes'>(def: RuleDef, key: K, value: RuleDef[K] | undefined): boolean {
  if (value === undefined) return false;
  def[key] = value;
  return true;
}

function checkActions(src: YamlSource, value: unknown, path: Path): Action[] | undefined {
  const list = checkStringList(src, value, path, 'action', true);
  if (!list) return undefined;
  const unknown = list.filter((a) => !(actions as readonly string[]).includes(a));
  if (unknown.length > 0) {
    src.fail(path, `unknown action ${unknown.map((a) => `"${a}"`).join(', ')} (allowed: ${actions.join(', ')})`);
    return undefined;
  }
  return [...new Set(list)] as Action[];
}

function checkSubject(src: YamlSource, value: unknown, path: Path): SubjectName | undefined {
  if (typeof value === 'string' && (subjectNames as string[]).includes(value)) return value as SubjectName;
  src.fail(path, `unknown subject ${JSON.stringify(value)} (allowed: ${subjectNames.join(', ')})`);
  return undefined;
}

function checkFields(src: YamlSource, subject: SubjectName, value: unknown, path: Path): string[] | undefined {
  const list = checkStringList(src, value, path, 'fields');
  if (!list) return undefined;
  const known = Object.keys(subjects[subject].fields);
  let clean = true;
  for (const [i, field] of list.entries()) {
    if (!known.includes(field)) clean = fail(src, [...path, i], `unknown field "${field}" of ${subject}`);
  }
  return clean ? [...new Set(list)] : undefined;
}

function checkPurposeList(src: YamlSource, value: unknown, path: Path, ctx: RoleContext): string[] | undefined {
  const list = checkStringList(src, value, path, 'purposes');
  if (!list) return undefined;
  let clean = true;
  for (const [i, purpose] of list.entries()) {
    if (!ctx.purposes.includes(purpose)) clean = fail(src, [...path, i], `unknown purpose "${purpose}" (declared in purposes.yaml: ${ctx.purposes.join(', ')})`);
  }
  return clean ? [...new Set(list)] : undefined;
}

/** Rules that parse but would grant something the design forbids or the database cannot do. */
function checkSemantics(src: YamlSource, def: RuleDef, path: Path, ctx: RoleContext): boolean {
  let clean = true;
  const fields = def.fields ?? Object.keys(subjects[def.subject].fields);
  const masks = ctx.masking[def.subject] ?? {};
  if (def.actions.includes('reveal') && !def.inverted && !def.purposes) {
    const sensitive = fields.filter((f) => Object.hasOwn(masks, f) && masks[f]?.requiresPurpose);
    if (sensitive.length > 0) {
      clean = fail(src, [...path, 'action'], `reveal of sensitive field${sensitive.length > 1 ? 's' : ''} ${sensitive.join(', ')} must list purposes`);
    }
  }
  if (def.fields && (def.actions.includes('filter') || def.actions.includes('sort'))) {
    const specs: Record<string, { kind: string; column?: unknown }> = subjects[def.subject].fields;
    const noColumn = def.fields.filter((f) => specs[f]?.kind !== 'scalar' || !specs[f]?.column);
    if (noColumn.length > 0) {
      // Encrypted values and relations cannot be compared or ordered in SQL.
      clean = fail(src, [...path, 'fields'], `filter/sort need a plain column: ${noColumn.join(', ')} of ${def.subject} has none`);
    }
  }
  return clean;
}

function fail(src: YamlSource, path: Path, reason: string): false {
  src.fail(path, reason);
  return false;
}
