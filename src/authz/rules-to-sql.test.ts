import { buildMongoQueryMatcher, createMongoAbility, subject, type AnyMongoAbility, type RawRuleOf } from '@casl/ability';
// @ucast/mongo2js is @casl/ability's own dependency; CASL's docs extend the matcher from it this way.
import { $and, $nor, $not, $or, and, nor, not, or } from '@ucast/mongo2js';
import type { SQL } from 'drizzle-orm';
import { PgDialect, type PgColumn, type PgTable } from 'drizzle-orm/pg-core';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDb, type DbHandle } from '../db/client.js';
import { customers, orders, principals } from '../db/schema/index.js';
import { conditionToSql, rulesToSql, UnsupportedConditionError } from './rules-to-sql.js';

type RawRule = RawRuleOf<AnyMongoAbility>;
type Pools = Record<string, readonly (string | null)[]>;

/** The operators rulesToSql translates, so the property tests can generate all of them. */
const conditionsMatcher = buildMongoQueryMatcher({ $and, $or, $nor, $not }, { and, or, nor, not });
const abilityOf = (rules: RawRule[]): AnyMongoAbility => createMongoAbility(rules, { conditionsMatcher });

const owners = [
  { id: 'u-1', roles: ['sales_rep'] },
  { id: 'u-2', roles: ['sales_manager', 'sales_rep'] },
  { id: 'u-3', roles: [] },
];
// Small pools so conditions hit rows. '-1' is there because CASL coerces null against it (null > '-1').
const customerPools = {
  ownerId: ['u-1', 'u-2', 'u-3'],
  department: ['east', 'west'],
  tier: ['gold', 'silver', 'bronze'],
  city: ['Shanghai', 'Beijing', '杭州'],
  province: ['Zhejiang', 'Jiangsu'],
  segment: ['retail', 'corporate'],
  gender: ['F', 'M', '-1', null],
} satisfies Pools;
const orderPools = { status: ['paid', 'pending', 'refunded'], channel: ['web', 'store'] } satisfies Pools;

type CustomerRow = { id: string } & { [K in keyof typeof customerPools]: (typeof customerPools)[K][number] };
interface OrderRow {
  id: string;
  customerId: string;
  status: string;
  channel: string;
}

const uuidOf = (group: string, i: number): string => `00000000-0000-4000-${group}-${String(i).padStart(12, '0')}`;
const pick = <T>(values: readonly T[]): fc.Arbitrary<T> => fc.constantFrom(...values);
const render = (where: SQL) => new PgDialect().sqlToQuery(where);

let handle: DbHandle;

beforeAll(async () => {
  handle = await createDb({ kind: 'pglite', dataDir: 'memory://' });
  await handle.migrate();
  await handle.db.insert(principals).values(owners.map((o) => ({ ...o, displayName: o.id })));
});

afterAll(async () => {
  await handle.close();
});

async function resetRows(rows: CustomerRow[], orderRows: OrderRow[] = []): Promise<void> {
  await handle.db.delete(customers); // cascades to orders
  if (rows.length) await handle.db.insert(customers).values(rows.map((r) => ({ ...r, name: 'n', nameMasked: 'n*' })));
  const placedAt = new Date('2024-05-01T00:00:00Z');
  if (orderRows.length) await handle.db.insert(orders).values(orderRows.map((o) => ({ ...o, amount: '10.00', product: 'p', placedAt })));
}

async function idsWhere(table: PgTable, id: PgColumn, where: SQL): Promise<string[]> {
  const rows = await handle.db.select({ id }).from(table).where(where);
  return rows.map((r) => String(r.id)).sort();
}

const customerArb = fc.record({
  ownerId: pick(customerPools.ownerId),
  department: pick(customerPools.department),
  tier: pick(customerPools.tier),
  city: pick(customerPools.city),
  province: pick(customerPools.province),
  segment: pick(customerPools.segment),
  gender: pick(customerPools.gender),
});
const customerRowsArb = (minLength: number, maxLength: number): fc.Arbitrary<CustomerRow[]> =>
  fc.array(customerArb, { minLength, maxLength }).map((rows) => rows.map((row, i) => ({ id: uuidOf('8000', i), ...row })));

const place = { city: 'Shanghai', province: 'Zhejiang', segment: 'retail' };
const fixedCustomers: CustomerRow[] = [
  { id: uuidOf('8000', 1), ownerId: 'u-1', department: 'east', tier: 'gold', ...place, gender: 'F' },
  { id: uuidOf('8000', 2), ownerId: 'u-1', department: 'west', tier: 'silver', ...place, city: 'Beijing', gender: null },
  { id: uuidOf('8000', 3), ownerId: 'u-2', department: 'east', tier: 'bronze', ...place, city: '杭州', gender: 'M' },
];

/** Rows of `rows` that CASL's in-memory check admits, by id. */
function admitted<T extends { id: string }>(ability: AnyMongoAbility, type: string, rows: T[], field?: string, view = (row: T): object => row) {
  return rows
    .filter((row) => ability.can('read', subject(type, { ...view(row) }), field))
    .map((row) => row.id)
    .sort();
}

describe(rulesToSql.name, () => {
  it('denies every row when no rule grants the action', () => {
    const ability = abilityOf([{ action: 'update', subject: 'Customer' }]);
    expect(render(rulesToSql(ability, 'read', 'Customer')).sql).toBe('false');
  });

  it('admits every row for an unconditional rule', () => {
    const ability = abilityOf([{ action: 'manage', subject: 'all' }]);
    expect(render(rulesToSql(ability, 'read', 'Customer')).sql).toBe('true');
  });

  it('subtracts the rows of an inverted rule', async () => {
    await resetRows(fixedCustomers);
    const ability = abilityOf([
      { action: 'read', subject: 'Customer' },
      { action: 'read', subject: 'Customer', inverted: true, conditions: { tier: 'gold' } },
    ]);
    expect(await idsWhere(customers, customers.id, rulesToSql(ability, 'read', 'Customer'))).toEqual([uuidOf('8000', 2), uuidOf('8000', 3)]);
  });

  it('lets an unconditional inverted rule deny every rule below it but none above', async () => {
    await resetRows(fixedCustomers);
    const ability = abilityOf([
      { action: 'read', subject: 'Customer', conditions: { ownerId: 'u-1' } },
      { action: 'read', subject: 'Customer', inverted: true },
      { action: 'read', subject: 'Customer', conditions: { department: 'east' } },
    ]);
    expect(await idsWhere(customers, customers.id, rulesToSql(ability, 'read', 'Customer'))).toEqual([uuidOf('8000', 1), uuidOf('8000', 3)]);
  });

  it('applies field-restricted rules as ability.can does with and without a field', async () => {
    await resetRows(fixedCustomers);
    const ability = abilityOf([
      { action: 'read', subject: 'Customer', fields: ['tier'] },
      { action: 'read', subject: 'Customer', fields: ['name'], conditions: { ownerId: 'u-1' } },
      { action: 'read', subject: 'Customer', fields: ['name'], inverted: true, conditions: { gender: null } },
    ]);
    const idsFor = (field?: string) => idsWhere(customers, customers.id, rulesToSql(ability, 'read', 'Customer', field));
    expect(await idsFor('name')).toEqual([uuidOf('8000', 1)]);
    expect(render(rulesToSql(ability, 'read', 'Customer', 'phone')).sql).toBe('false');
    for (const field of [undefined, 'name', 'tier', 'phone']) {
      expect(await idsFor(field)).toEqual(admitted(ability, 'Customer', fixedCustomers, field));
    }
  });

  it('reaches a customer attribute of an order through EXISTS on its customer', async () => {
    await resetRows(fixedCustomers, [
      { id: uuidOf('9000', 1), customerId: uuidOf('8000', 1), status: 'paid', channel: 'web' },
      { id: uuidOf('9000', 2), customerId: uuidOf('8000', 2), status: 'paid', channel: 'web' },
    ]);
    const where = rulesToSql(abilityOf([{ action: 'read', subject: 'Order', conditions: { 'customer.department': 'east' } }]), 'read', 'Order');
    expect(render(where).sql).toContain('exists (select 1 from "customers" where "customers"."id" = "orders"."customer_id" and');
    expect(await idsWhere(orders, orders.id, where)).toEqual([uuidOf('9000', 1)]);
  });

  it('refuses $or that the default matcher parsed as a field, rather than granting on it', () => {
    const ability = createMongoAbility([{ action: 'read', subject: 'Customer', conditions: { $or: [{ tier: 'gold' }] } }]);
    expect(() => rulesToSql(ability, 'read', 'Customer')).toThrow(UnsupportedConditionError);
  });
});

describe(conditionToSql.name, () => {
  it('binds values as parameters and never splices them into the SQL text', () => {
    const query = render(conditionToSql('Customer', { city: { $in: ["x' or 1=1 --", 'Beijing'] }, tier: { $gt: 'a' } }));
    expect(query.sql).not.toContain('1=1');
    expect(query.params).toEqual(["x' or 1=1 --", 'Beijing', 'a']);
  });

  it('translates $and, $or, $nor and $not', async () => {
    await resetRows(fixedCustomers);
    const where = conditionToSql('Customer', {
      $or: [{ tier: 'gold' }, { gender: { $not: { $in: ['F', 'M'] } } }],
      $nor: [{ city: '杭州' }],
      $and: [{}],
    });
    expect(await idsWhere(customers, customers.id, where)).toEqual([uuidOf('8000', 1), uuidOf('8000', 2)]);
  });

  it('binds dates and numbers with the column encoding', async () => {
    await resetRows([]);
    const where = conditionToSql('Order', { placedAt: { $lt: '2024-06-01T00:00:00Z', $gte: new Date(0) }, amount: { $gte: 5 } });
    expect(await idsWhere(orders, orders.id, where)).toEqual([]);
  });

  it('matches a string[] column on any element, as CASL does', async () => {
    const rows = owners.map(({ id, roles }) => ({ id, roles }));
    const cases = [
      { roles: 'sales_rep' },
      { roles: { $ne: 'sales_rep' } },
      { roles: { $in: ['sales_manager', 'admin'] } },
      { roles: { $nin: ['sales_rep'] } },
      { roles: null },
    ];
    for (const conditions of cases) {
      const ability = abilityOf([{ action: 'read', subject: 'Principal', conditions }]);
      expect(await idsWhere(principals, principals.id, conditionToSql('Principal', conditions))).toEqual(admitted(ability, 'Principal', rows));
    }
  });

  it.each([
    ['an encrypted field', { phone: '13800000000' }],
    ['an unknown field', { constructor: 'x' }],
    ['a to-many relation', { 'orders.status': 'paid' }],
    ['an unknown operator', { tier: { $regex: 'gold' } }],
    ['an unknown top-level operator', { $where: 'gold' }],
    ['a value of the wrong type', { tier: 42 }],
    ['null in a range', { gender: { $lt: null } }],
    ['$not of a bare value', { tier: { $not: 'gold' } }],
  ])('refuses %s without naming the value', (_case, conditions: Record<string, unknown>) => {
    expect(() => conditionToSql('Customer', conditions)).toThrow(UnsupportedConditionError);
    expect(() => conditionToSql('Customer', conditions)).not.toThrow(/13800000000|gold|42/);
  });
});

// ── property tests: SQL admits exactly the rows ability.can admits ──

function fieldQueryArb(pool: readonly (string | null)[]): fc.Arbitrary<unknown> {
  const value = pick(pool);
  const nonNull = pick(pool.filter((v) => v !== null));
  const list = fc.subarray([...pool]);
  const operator = fc.oneof(
    value.map(($eq) => ({ $eq })),
    value.map(($ne) => ({ $ne })),
    list.map(($in) => ({ $in })),
    list.map(($nin) => ({ $nin })),
    fc.tuple(pick(['$lt', '$lte', '$gt', '$gte']), nonNull).map(([op, v]) => ({ [op]: v })),
  );
  return fc.oneof(value, operator, fc.tuple(operator, operator).map(([a, b]) => ({ ...a, ...b })), operator.map(($not) => ({ $not })));
}

function queryArb(pools: Pools, depth: number): fc.Arbitrary<Record<string, unknown>> {
  const leaf = pick(Object.keys(pools)).chain((field) => fieldQueryArb(pools[field] ?? []).map((q): [string, unknown] => [field, q]));
  const compound = (): fc.Arbitrary<[string, unknown]> =>
    fc.tuple(pick(['$and', '$or', '$nor']), fc.array(queryArb(pools, depth - 1), { minLength: 1, maxLength: 3 }));
  const entry = depth === 0 ? leaf : fc.oneof({ weight: 3, arbitrary: leaf }, { weight: 1, arbitrary: compound() });
  return fc.array(entry, { minLength: 1, maxLength: 2 }).map((entries) => Object.fromEntries(entries));
}

function rulesArb(subjectName: string, pools: Pools, fields: string[]): fc.Arbitrary<RawRule[]> {
  const rule = fc.record({
    action: pick(['read', 'read', 'manage']),
    subject: pick([subjectName, subjectName, 'all']),
    inverted: pick([false, false, true]),
    conditions: fc.option(fc.oneof({ weight: 9, arbitrary: queryArb(pools, 2) }, { weight: 1, arbitrary: fc.constant({}) }), { nil: undefined }),
    fields: fc.option(fc.subarray(fields, { minLength: 1 }), { nil: undefined }),
  });
  return fc.array(rule, { minLength: 1, maxLength: 4 });
}

// Row counts of 20–30 and mostly-permissive rules keep "some rows but not all" the common outcome.
describe('rulesToSql agrees with ability.can', () => {
  it('on random Customer rules and rows', async () => {
    const rules = rulesArb('Customer', customerPools, ['name', 'tier', 'p*']);
    const fields = pick([undefined, undefined, 'name', 'tier', 'phone']);
    const property = fc.asyncProperty(rules, customerRowsArb(20, 30), fields, async (rawRules, rows, field) => {
      const ability = abilityOf(rawRules);
      await resetRows(rows);
      const where = rulesToSql(ability, 'read', 'Customer', field);
      expect(await idsWhere(customers, customers.id, where)).toEqual(admitted(ability, 'Customer', rows, field));
    });
    await fc.assert(property, { numRuns: 100 });
  });

  it('on random Order rules with customer.* conditions', async () => {
    const { ownerId, department, tier, gender } = customerPools;
    const customerPaths = { 'customer.ownerId': ownerId, 'customer.department': department, 'customer.tier': tier, 'customer.gender': gender };
    const order = fc.record({ customer: fc.nat(7), status: pick(orderPools.status), channel: pick(orderPools.channel) });
    const ordersArb = fc.array(order, { minLength: 20, maxLength: 30 });
    const fields = pick([undefined, undefined, 'amount']);
    const rules = rulesArb('Order', { ...orderPools, ...customerPaths }, ['amount', 'status']);
    const property = fc.asyncProperty(rules, customerRowsArb(8, 8), ordersArb, fields, async (rawRules, rows, specs, field) => {
      const orderRows = specs.map(({ customer, ...o }, i) => ({ ...o, id: uuidOf('9000', i), customerId: uuidOf('8000', customer) }));
      const byId = new Map(rows.map((r) => [r.id, r]));
      const ability = abilityOf(rawRules);
      await resetRows(rows, orderRows);
      // CASL sees the order as the API would hand it over: with its customer nested.
      const expected = admitted(ability, 'Order', orderRows, field, (o) => ({ ...o, customer: byId.get(o.customerId) }));
      expect(await idsWhere(orders, orders.id, rulesToSql(ability, 'read', 'Order', field))).toEqual(expected);
    });
    await fc.assert(property, { numRuns: 100 });
  });
});
