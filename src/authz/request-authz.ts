import type { AnyMongoAbility } from '@casl/ability';
import { sql, type SQL } from 'drizzle-orm';
import { createHash } from 'node:crypto';
import { abilityFor } from './policy/ability.js';
import type { PolicyBundle } from './policy/bundle.js';
import type { Principal } from './principal.js';
import { rulesToSql } from './rules-to-sql.js';
import type { Action, SubjectName } from './subjects.js';

/** `always` / `never` short-circuit the SQL; `conditional` carries the WHERE fragment. */
export type Grant = { kind: 'always' } | { kind: 'never' } | { kind: 'conditional'; where: SQL; key: string };

/** Abilities are cached and shared across requests (abilityFor), so each one's digest is computed once. */
const digests = new WeakMap<AnyMongoAbility, string>();

/** A digest of the ability's rules after principal interpolation: equal digests, equal SQL. */
function rulesDigest(ability: AnyMongoAbility): string {
  let digest = digests.get(ability);
  if (digest === undefined) {
    // undefined is spelled out: JSON would drop the key, and {a: undefined} is not {}.
    const text = JSON.stringify(ability.rules, (_key, value: unknown) => (value === undefined ? { $undefined: true } : value));
    digest = createHash('sha256').update(text).digest('base64url');
    digests.set(ability, digest);
  }
  return digest;
}

/**
 * The per-request view of the policy: one CASL ability per declared purpose,
 * built once (and cached across requests by abilityFor), and every
 * (action, subject, field) decision turned into SQL at most once.
 */
export class RequestAuthz {
  private readonly abilities = new Map<string, AnyMongoAbility>();
  private readonly grants = new Map<string, Grant>();

  constructor(
    readonly bundle: PolicyBundle,
    readonly principal: Principal,
  ) {}

  /** The ability without purpose (reveal rules that need a purpose are absent) or for one purpose. */
  ability(purpose?: string): AnyMongoAbility {
    const key = purpose ?? '';
    let ability = this.abilities.get(key);
    if (!ability) {
      ability = abilityFor(this.bundle, this.principal, purpose);
      this.abilities.set(key, ability);
    }
    return ability;
  }

  /** Whether any rule could ever grant this (conditions ignored): the up-front check before SQL. */
  canEver(action: Action, subject: SubjectName, field?: string, purpose?: string): boolean {
    return this.ability(purpose).can(action, subject, field);
  }

  /**
   * Everything about this caller that can change the SQL of a policed read
   * asking for these purposes: the bundle and the rules, after interpolation,
   * of the purpose-less ability and of each purpose's. Key of built-SQL caches.
   */
  fingerprint(purposes: Iterable<string | undefined>): string {
    let key = `${this.bundle.version}|${rulesDigest(this.ability())}`;
    for (const purpose of purposes) if (purpose !== undefined) key += `|${purpose}=${rulesDigest(this.ability(purpose))}`;
    return key;
  }

  /** The kind of grant() without building its SQL. */
  grantKind(action: Action, subject: SubjectName, field?: string, purpose?: string): Grant['kind'] {
    const rules = this.ability(purpose).rulesFor(action, subject, field);
    if (!rules.some((r) => !r.inverted)) return 'never';
    const first = rules[0];
    // The highest-priority rule decides alone when it has no conditions.
    return first && !first.inverted && !first.conditions ? 'always' : 'conditional';
  }

  /** The rows (and field) for which the action is granted, as a SQL decision. */
  grant(action: Action, subject: SubjectName, field?: string, purpose?: string): Grant {
    const key = `${action}|${subject}|${field ?? ''}|${purpose ?? ''}`;
    let grant = this.grants.get(key);
    if (!grant) {
      grant = this.computeGrant(action, subject, field, purpose);
      this.grants.set(key, grant);
    }
    return grant;
  }

  private computeGrant(action: Action, subject: SubjectName, field: string | undefined, purpose: string | undefined): Grant {
    const kind = this.grantKind(action, subject, field, purpose);
    if (kind !== 'conditional') return { kind };
    const ability = this.ability(purpose);
    const rules = ability.rulesFor(action, subject, field);
    const signature = rules.map((r) => ability.rules.indexOf(r.origin)).join(',');
    return { kind: 'conditional', where: rulesToSql(ability, action, subject, field), key: `${purpose ?? ''}#${signature}` };
  }

  /** The grant as a boolean SQL expression. */
  static toSql(grant: Grant): SQL {
    switch (grant.kind) {
      case 'always':
        return sql`true`;
      case 'never':
        return sql`false`;
      case 'conditional':
        return grant.where;
    }
  }

  /** Plain attribute names that the rules of (action, subject) test, so rows can be re-checked in memory. */
  conditionFields(action: Action, subject: SubjectName, purpose?: string): Set<string> {
    const out = new Set<string>();
    for (const rule of this.ability(purpose).rulesFor(action, subject)) {
      if (rule.conditions) collectKeys(rule.conditions, out);
    }
    return out;
  }
}

function collectKeys(conditions: unknown, out: Set<string>): void {
  if (Array.isArray(conditions)) {
    for (const c of conditions) collectKeys(c, out);
    return;
  }
  if (conditions === null || typeof conditions !== 'object') return;
  for (const [key, value] of Object.entries(conditions)) {
    if (key.startsWith('$')) collectKeys(value, out);
    else out.add(key.split('.')[0]!);
  }
}
