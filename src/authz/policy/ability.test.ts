import { describe, expect, it } from 'vitest';
import type { Principal } from '../principal.js';
import { abilityFor, decide, explain, permittedFields, toSubject } from './ability.js';
import type { PolicyBundle, RuleDef } from './types.js';

let nextLine = 1;
function rule(def: Omit<RuleDef, 'inverted' | 'origin'> & { inverted?: boolean }): RuleDef {
  return { inverted: false, ...def, origin: { file: 'test.yaml', line: nextLine++ } };
}

function bundleOf(roles: Record<string, RuleDef[]>, version = 'v1'): PolicyBundle {
  return {
    version,
    dir: 'memory',
    roles: new Map(Object.entries(roles).map(([name, rules]) => [name, { name, file: `${name}.yaml`, rules }])),
    masking: { Customer: { name: { strategy: 'surname', requiresPurpose: false }, phone: { strategy: 'last4', requiresPurpose: true } } },
    purposes: ['contact', 'dsr'],
    datasets: new Map(),
  };
}

function principal(overrides: Partial<Principal> = {}): Principal {
  return { id: 'u-1', displayName: '测试', roles: ['rep'], department: 'east', region: 'east-china', status: 'active', ...overrides };
}

const own = rule({ actions: ['read'], subject: 'Customer', fields: ['name', 'phone', 'city'], conditions: { ownerId: '${principal.id}' } });
const revealPhone = rule({ actions: ['reveal'], subject: 'Customer', fields: ['phone'], conditions: { ownerId: '${principal.id}' }, purposes: ['contact'] });
const department = rule({ actions: ['read'], subject: 'Customer', fields: ['city'], conditions: { department: '${principal.department}' } });
const repBundle = bundleOf({ rep: [own, revealPhone], manager: [department] });
const customer = (attrs: Record<string, unknown>) => toSubject('Customer', attrs);

describe(abilityFor.name, () => {
  it('replaces principal templates by the principal attributes', () => {
    const ability = abilityFor(repBundle, principal());
    expect(ability.can('read', customer({ ownerId: 'u-1' }), 'city')).toBe(true);
    expect(ability.can('read', customer({ ownerId: 'u-2' }), 'city')).toBe(false);
  });

  it('drops a rule whose attribute is missing instead of matching rows where it is null', () => {
    const ability = abilityFor(repBundle, principal({ roles: ['manager'], department: null }));
    expect(ability.rules).toEqual([]);
    expect(ability.can('read', customer({}), 'city')).toBe(false);
  });

  it.each(['frozen', 'departed'] as const)('gives a %s principal nothing', (status) => {
    expect(abilityFor(repBundle, principal({ status }), 'contact').rules).toEqual([]);
  });

  it('gives nothing for an unknown purpose and ignores unknown roles', () => {
    expect(abilityFor(repBundle, principal(), 'marketing').rules).toEqual([]);
    expect(abilityFor(repBundle, principal({ roles: ['ghost'] })).rules).toEqual([]);
    expect(abilityFor(repBundle, principal({ roles: ['ghost', 'rep'] })).rules).toHaveLength(1);
  });

  it('keeps a reveal rule only when the declared purpose is among its purposes', () => {
    const row = customer({ ownerId: 'u-1' });
    expect(abilityFor(repBundle, principal()).can('reveal', row, 'phone')).toBe(false);
    expect(abilityFor(repBundle, principal(), 'dsr').can('reveal', row, 'phone')).toBe(false);
    expect(abilityFor(repBundle, principal(), 'contact').can('reveal', row, 'phone')).toBe(true);
  });

  it('lets an inverted rule override grants of any role, whatever the role order', () => {
    const cannot = rule({ actions: ['read'], subject: 'Customer', fields: ['city'], conditions: { tier: 'vip' }, inverted: true });
    const bundle = bundleOf({ rep: [own], guard: [cannot] });
    for (const roles of [['rep', 'guard'], ['guard', 'rep']]) {
      const ability = abilityFor(bundle, principal({ roles }));
      expect(ability.can('read', customer({ ownerId: 'u-1', tier: 'vip' }), 'city')).toBe(false);
      expect(ability.can('read', customer({ ownerId: 'u-1', tier: 'std' }), 'city')).toBe(true);
    }
  });

  it('evaluates $or, $and and $not as operators, not as equality on a field named "$or"', () => {
    const conditions = { $or: [{ ownerId: '${principal.id}' }, { $and: [{ department: '${principal.department}' }, { tier: { $not: { $in: ['vip'] } } }] }] };
    const ability = abilityFor(bundleOf({ rep: [rule({ actions: ['read'], subject: 'Customer', conditions })] }), principal());
    expect(ability.can('read', customer({ ownerId: 'u-1', department: 'west', tier: 'vip' }))).toBe(true);
    expect(ability.can('read', customer({ ownerId: 'u-2', department: 'east', tier: 'std' }))).toBe(true);
    expect(ability.can('read', customer({ ownerId: 'u-2', department: 'east', tier: 'vip' }))).toBe(false);
    expect(ability.can('read', customer({ ownerId: 'u-2', department: 'west', tier: 'std' }))).toBe(false);
  });

  it('follows to-one relation paths', () => {
    const orders = rule({ actions: ['read'], subject: 'Order', conditions: { 'customer.ownerId': '${principal.id}' } });
    const ability = abilityFor(bundleOf({ rep: [orders] }), principal());
    expect(ability.can('read', toSubject('Order', { customer: { ownerId: 'u-1' } }))).toBe(true);
    expect(ability.can('read', toSubject('Order', { customer: { ownerId: 'u-2' } }))).toBe(false);
  });

  it('reuses the ability for the same version, principal attributes and purpose only', () => {
    const first = abilityFor(repBundle, principal(), 'contact');
    expect(abilityFor(repBundle, principal(), 'contact')).toBe(first);
    expect(abilityFor(repBundle, principal())).not.toBe(first);
    expect(abilityFor(repBundle, principal({ department: 'west' }), 'contact')).not.toBe(first);
    expect(abilityFor(repBundle, principal({ roles: ['rep', 'manager'] }), 'contact')).not.toBe(first);
  });

  it('bounds the cache, evicting the least recently used ability', () => {
    const bundle = bundleOf({ rep: [own] });
    const oldest = abilityFor(bundle, principal({ id: 'u-0' }));
    for (let i = 1; i <= 1_000; i++) abilityFor(bundle, principal({ id: `u-${i}` }));
    expect(abilityFor(bundle, principal({ id: 'u-0' }))).not.toBe(oldest);
  });
});

describe(toSubject.name, () => {
  it('copies only the declared fields into null-prototype objects', () => {
    const input = JSON.parse('{"ownerId":"u-1","__proto__":{"polluted":true},"constructor":"x","bogus":1,"__caslSubjectType__":"Principal"}') as unknown;
    const row = toSubject('Customer', input);
    expect(Object.getPrototypeOf(row)).toBeNull();
    expect(Object.keys(row)).toEqual(['ownerId']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.getPrototypeOf(toSubject('Order', { customer: { ownerId: 'u-1' } }).customer)).toBeNull();
  });

  it('does not let an untagged object choose its subject type through __caslSubjectType__', () => {
    const ability = abilityFor(repBundle, principal());
    const forged = JSON.parse('{"__caslSubjectType__":"Customer","ownerId":"u-1"}') as Record<string, unknown>;
    expect(ability.can('read', forged, 'city')).toBe(false);
    expect(ability.can('read', customer(forged), 'city')).toBe(true);
  });
});

describe(explain.name, () => {
  const mine = { ownerId: 'u-1' };

  it('reveals with the reveal rule, masks with the read rule, denies with no rule', () => {
    const p = principal();
    expect(explain(repBundle, p, { action: 'read', subject: 'Customer', field: 'phone', resource: mine, purpose: 'contact' })).toEqual({ decision: 'allow', rule: revealPhone.origin });
    expect(explain(repBundle, p, { action: 'read', subject: 'Customer', field: 'phone', resource: mine })).toEqual({ decision: 'mask', rule: own.origin });
    expect(explain(repBundle, p, { action: 'read', subject: 'Customer', field: 'city', resource: mine })).toEqual({ decision: 'allow', rule: own.origin });
    expect(explain(repBundle, p, { action: 'read', subject: 'Customer', field: 'phone', resource: { ownerId: 'u-2' }, purpose: 'contact' })).toEqual({ decision: 'deny', rule: null });
  });

  it('names the inverted rule that denied', () => {
    const cannot = rule({ actions: ['read'], subject: 'Customer', fields: ['city'], inverted: true, reason: 'closed' });
    const result = explain(bundleOf({ rep: [own, cannot] }), principal(), { action: 'read', subject: 'Customer', field: 'city', resource: mine });
    expect(result).toEqual({ decision: 'deny', rule: cannot.origin });
  });

  it('denies unknown subjects, fields and actions with a note', () => {
    const p = principal();
    expect(explain(repBundle, p, { action: 'read', subject: 'Invoice' })).toMatchObject({ decision: 'deny', rule: null, note: expect.stringMatching(/subject/) });
    expect(explain(repBundle, p, { action: 'read', subject: 'Customer', field: 'toString' })).toMatchObject({ decision: 'deny', note: expect.stringMatching(/field/) });
    expect(explain(repBundle, p, { action: 'manage', subject: 'Customer' })).toMatchObject({ decision: 'deny', note: expect.stringMatching(/action/) });
    expect(explain(repBundle, principal({ status: 'departed' }), { action: 'read', subject: 'Customer', resource: mine })).toMatchObject({ decision: 'deny', note: 'principal is departed' });
  });

  it('decides other actions as allow or deny, never mask', () => {
    const bundle = bundleOf({ rep: [rule({ actions: ['filter', 'update'], subject: 'Customer', fields: ['name'] })] });
    expect(decide(bundle, principal(), { action: 'filter', subject: 'Customer', field: 'name' })).toBe('allow');
    expect(decide(bundle, principal(), { action: 'update', subject: 'Customer', field: 'name' })).toBe('allow');
    expect(decide(bundle, principal(), { action: 'sort', subject: 'Customer', field: 'name' })).toBe('deny');
  });
});

describe(permittedFields.name, () => {
  it('lists the fields granted on a row, all subject fields for a rule without fields', () => {
    const ability = abilityFor(repBundle, principal());
    expect(permittedFields(ability, 'read', customer({ ownerId: 'u-1' })).sort()).toEqual(['city', 'name', 'phone']);
    expect(permittedFields(ability, 'read', customer({ ownerId: 'u-2' }))).toEqual([]);
    const admin = abilityFor(bundleOf({ admin: [rule({ actions: ['read'], subject: 'Principal' })] }), principal({ roles: ['admin'] }));
    expect(permittedFields(admin, 'read', 'Principal')).toEqual(['id', 'displayName', 'roles', 'department', 'region', 'status']);
  });
});
