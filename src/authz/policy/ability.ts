import {
  buildMongoQueryMatcher,
  createMongoAbility,
  subject as tagSubject,
  type AbilityTuple,
  type FieldMatcher,
  type ForcedSubject,
  type MongoAbility,
  type MongoQuery,
  type RawRuleOf,
  type Rule,
} from '@casl/ability';
import { permittedFieldsOf } from '@casl/ability/extra';
// CASL's default matcher parses $and/$or/$not as equality on a field named "$or" (never true):
// its documented fix is to register the instructions from @ucast/mongo2js, CASL's own dependency.
import { $and, $not, $or, and, not, or } from '@ucast/mongo2js';
import type { Principal } from '../principal.js';
import { actions, subjectNames, subjects, type FieldSpec, type SubjectName } from '../subjects.js';
import { maskStrategy } from './bundle.js';
import { interpolate } from './conditions.js';
import type { PolicyBundle, RuleDef, RuleOrigin } from './types.js';

/** The ability of one principal for one declared purpose (or none). Treat as read-only: it is cached and shared. */
export type CustosAbility = MongoAbility;
type RawRule = RawRuleOf<CustosAbility>;
type CaslRule = Rule<AbilityTuple, MongoQuery>;

const SUBJECT_TYPE_KEY = '__caslSubjectType__';
/** The type of any object not tagged by `subject()`: no rule names it, so it gets nothing. */
const UNTYPED = '(untyped)';
const CACHE_LIMIT = 1_000;

const conditionsMatcher = buildMongoQueryMatcher({ $and, $or, $not }, { and, or, not });
// Exact names only: field names come from subjects.ts, wildcards have no meaning in our policies.
const fieldMatcher: FieldMatcher = (fields) => (field) => fields.includes(field);
/** CASL raw rule → where it was written; CASL keeps the raw rule as `rule.origin`. */
const origins = new WeakMap<object, RuleOrigin>();
const caches = new WeakMap<PolicyBundle, Map<string, CustosAbility>>();

/**
 * The CASL ability of `principal` under `bundle` for a declared `purpose`.
 * Deny by default: an inactive principal, an unknown purpose or unknown roles give nothing.
 */
export function abilityFor(bundle: PolicyBundle, principal: Principal, purpose?: string): CustosAbility {
  let cache = caches.get(bundle);
  if (!cache) caches.set(bundle, (cache = new Map<string, CustosAbility>()));
  const { id, roles, department, region, status } = principal;
  const key = JSON.stringify([bundle.version, id, roles, department, region, status, purpose ?? null]);
  const hit = cache.get(key);
  if (hit) {
    // Refresh recency so eviction drops the least recently used entry.
    cache.delete(key);
    cache.set(key, hit);
    return hit;
  }
  const ability = buildAbility(bundle, principal, purpose);
  cache.set(key, ability);
  if (cache.size > CACHE_LIMIT) cache.delete(cache.keys().next().value as string);
  return ability;
}

function buildAbility(bundle: PolicyBundle, principal: Principal, purpose: string | undefined): CustosAbility {
  if (principal.status !== 'active') return create([]);
  if (purpose !== undefined && !bundle.purposes.includes(purpose)) return create([]);
  const allow: RawRule[] = [];
  const deny: RawRule[] = [];
  for (const roleName of new Set(principal.roles)) {
    for (const def of bundle.roles.get(roleName)?.rules ?? []) {
      const raw = toRawRule(def, principal, purpose);
      if (raw) (def.inverted ? deny : allow).push(raw);
    }
  }
  // CASL lets later rules win: inverted rules go last so a "cannot" overrides every grant, whatever the role order.
  return create([...allow, ...deny]);
}

function toRawRule(def: RuleDef, principal: Principal, purpose: string | undefined): RawRule | null {
  if (def.purposes && (purpose === undefined || !def.purposes.includes(purpose))) return null;
  const conditions = def.conditions ? interpolate(def.conditions, principal) : undefined;
  if (conditions === null) return null;
  const raw: RawRule = { action: [...def.actions], subject: def.subject };
  if (def.fields) raw.fields = [...def.fields];
  if (conditions) raw.conditions = conditions;
  if (def.inverted) raw.inverted = true;
  if (def.reason !== undefined) raw.reason = def.reason;
  origins.set(raw, def.origin);
  return raw;
}

function create(rules: RawRule[]): CustosAbility {
  return createMongoAbility(rules, { conditionsMatcher, fieldMatcher, detectSubjectType });
}

/**
 * Only a type set by `subject()` counts: it defines a non-enumerable property,
 * whereas JSON.parse creates enumerable ones, so a client cannot pick its type.
 */
function detectSubjectType(object: object): string {
  const descriptor = Object.getOwnPropertyDescriptor(object, SUBJECT_TYPE_KEY);
  const type: unknown = descriptor?.value;
  if (descriptor && !descriptor.enumerable && typeof type === 'string' && (subjectNames as string[]).includes(type)) return type;
  return UNTYPED;
}

/** Where the rule that made a decision was written, or null when none did. */
export function ruleOrigin(rule: CaslRule | null | undefined): RuleOrigin | null {
  return rule ? (origins.get(rule.origin) ?? null) : null;
}

/**
 * A typed subject built from untrusted input: only fields that `name` declares
 * in subjects.ts are copied (relations recursively), into null-prototype objects.
 */
export function toSubject(name: SubjectName, input: unknown): Record<string, unknown> & ForcedSubject<SubjectName> {
  return tagSubject(name, copyKnownFields(name, input, 0));
}

function copyKnownFields(name: SubjectName, input: unknown, depth: number): Record<string, unknown> {
  const out = Object.create(null) as Record<string, unknown>;
  if (typeof input !== 'object' || input === null || Array.isArray(input) || depth > 3) return out;
  const source = input as Record<string, unknown>;
  const fields: Record<string, FieldSpec> = subjects[name].fields;
  for (const [field, spec] of Object.entries(fields)) {
    if (!Object.hasOwn(source, field)) continue;
    const value = source[field];
    if (spec.kind === 'scalar') {
      if (isPlainValue(value) || (spec.type === 'string[]' && Array.isArray(value) && value.every((v) => typeof v === 'string'))) out[field] = value;
    } else if (spec.cardinality === 'one') {
      out[field] = copyKnownFields(spec.subject, value, depth + 1);
    } else if (Array.isArray(value)) {
      out[field] = value.map((child) => copyKnownFields(spec.subject, child, depth + 1));
    }
  }
  return out;
}

function isPlainValue(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || value instanceof Date;
}

/** Fields of `target` (a subject name or a tagged row) on which `action` is granted. */
export function permittedFields(ability: CustosAbility, action: string, target: SubjectName | ForcedSubject<SubjectName>): string[] {
  const name = typeof target === 'string' ? target : (ability.detectSubjectType(target) as SubjectName);
  const all = Object.hasOwn(subjects, name) ? Object.keys(subjects[name].fields) : [];
  return permittedFieldsOf(ability, action, target, { fieldsFrom: (rule) => rule.fields ?? all });
}

export type Decision = 'allow' | 'mask' | 'deny';

export interface DecisionRequest {
  action: string;
  subject: string;
  field?: string;
  /** The row's attributes; absent means a row about which nothing is known (only unconditional rules apply). */
  resource?: unknown;
}

export interface Explanation {
  decision: Decision;
  /** The rule that made the decision (for a deny: the "cannot" rule), or null when no rule matched. */
  rule: RuleOrigin | null;
  /** Why nothing could match, when the request itself is outside the bundle. */
  note?: string;
}

/**
 * Decides one request with an ability. For `read`: a reveal grant gives the
 * raw value, else a read grant gives the masked rendition of a maskable field
 * (raw otherwise), else deny. Any other action is allow or deny.
 */
export function explainWith(ability: CustosAbility, bundle: PolicyBundle, request: DecisionRequest): Explanation {
  const note = unknownPart(request);
  if (note) return { decision: 'deny', rule: null, note };
  const { action, field } = request;
  const target = toSubject(request.subject as SubjectName, request.resource ?? {});
  const reveal = action === 'read' && field ? ability.relevantRuleFor('reveal', target, field) : null;
  if (reveal && !reveal.inverted) return { decision: 'allow', rule: ruleOrigin(reveal) };
  const granted = ability.relevantRuleFor(action, target, field);
  if (granted && !granted.inverted) {
    const masked = action === 'read' && field !== undefined && maskStrategy(bundle, request.subject, field) !== undefined;
    return { decision: masked ? 'mask' : 'allow', rule: ruleOrigin(granted) };
  }
  return { decision: 'deny', rule: ruleOrigin(granted ?? reveal) };
}

function unknownPart({ action, subject, field }: DecisionRequest): string | undefined {
  if (!Object.hasOwn(subjects, subject)) return `unknown subject "${subject}"`;
  if (field !== undefined && !Object.hasOwn(subjects[subject as SubjectName].fields, field)) return `unknown field "${field}" of ${subject}`;
  if (!(actions as readonly string[]).includes(action)) return `unknown action "${action}"`;
  return undefined;
}

/** Explains the decision for `principal` with a declared `purpose` (builds or reuses the ability). */
export function explain(bundle: PolicyBundle, principal: Principal, request: DecisionRequest & { purpose?: string }): Explanation {
  const result = explainWith(abilityFor(bundle, principal, request.purpose), bundle, request);
  if (result.rule || result.note) return result;
  if (principal.status !== 'active') return { ...result, note: `principal is ${principal.status}` };
  if (request.purpose !== undefined && !bundle.purposes.includes(request.purpose)) return { ...result, note: `unknown purpose "${request.purpose}"` };
  return result;
}

/** The decision alone: 'allow' (raw), 'mask' or 'deny'. */
export function decide(bundle: PolicyBundle, principal: Principal, request: DecisionRequest & { purpose?: string }): Decision {
  return explain(bundle, principal, request).decision;
}
