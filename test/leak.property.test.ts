import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CustomerPlain } from '../src/crypto/customer-record.js';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

/**
 * The attacker's view: whatever query a role sends (fields, aliases,
 * fragments, purposes, nesting, filters, orderings, pages, garbage cursors),
 * no value it may not see raw appears anywhere in the response, errors included.
 */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ customers: 80 });
});
afterAll(async () => {
  await server?.stop();
});

type Sensitive = 'name' | 'phone' | 'email' | 'address' | 'idNumber' | 'birthDate';
const SENSITIVE: Sensitive[] = ['name', 'phone', 'email', 'address', 'idNumber', 'birthDate'];

/** Which raw values each role may ever see, per customer (the DESIGN.md default policy). */
const mayRevealRaw: Record<string, (c: CustomerPlain) => Sensitive[]> = {
  'u-rep-1': (c) => (c.ownerId === 'u-rep-1' ? ['name', 'phone', 'email'] : []),
  'u-rep-3': (c) => (c.ownerId === 'u-rep-3' ? ['name', 'phone', 'email'] : []),
  'u-mgr-1': (c) => (c.department === 'east' ? ['name', 'phone', 'email', 'address'] : []),
  'u-cs-1': () => [],
  'u-analyst-1': () => [],
  'u-auditor-1': () => [],
  'u-admin-1': () => [],
  'u-gone-1': () => [],
};

/** Mostly valid, sometimes hostile: a query that errors out early would prove nothing. */
const mostly = <T>(valid: T[], hostile: T[]) =>
  fc.oneof({ arbitrary: fc.constantFrom(...valid), weight: 4 }, { arbitrary: fc.constantFrom(...hostile), weight: 1 });

const scalarFields = ['id', 'province', 'city', 'gender', 'tier', 'segment', 'ownerId', 'department', 'createdAt', 'updatedAt'];
const purposeArb = mostly(['', '(purpose: CONTACT)'], ['(purpose: DSR)', '(purpose: FRAUD)', '(purpose: SUPPORT)']);
const aliasArb = fc.constantFrom('', 'x1: ', 'x2: ', 'phone: ', 'name: ', 'id: ');

const customerFieldArb = fc.oneof(
  fc.tuple(aliasArb, fc.constantFrom(...scalarFields.filter((f) => f !== 'gender'))).map(([a, f]) => `${a}${f}`),
  { arbitrary: fc.tuple(aliasArb, fc.constantFrom(...SENSITIVE), purposeArb).map(([a, f, p]) => `${a}${f}${p}`), weight: 1 },
  { arbitrary: fc.tuple(aliasArb, fc.constantFrom('name', 'phone', 'email', 'address'), purposeArb).map(([a, f, p]) => `${a}${f}${p}`), weight: 6 },
  fc.constantFrom(
    'orders(first: 3) { totalCount edges { node { id amount product } } }',
    'interactions(first: 2) { edges { node { id channel summary } } }',
    '... on Customer { phone(purpose: CONTACT) email }',
    '...F',
  ),
);

const argsArb = fc.record({
  first: mostly([5, 50, 100], [0, -1, 101]),
  filter: mostly(['', '', 'filter: { tier: "gold" }', 'filter: { city: "上海市" }'], ['filter: { phone: "$PHONE" }', 'filter: { name: "$NAME" }', 'filter: { email: "$EMAIL" }']),
  orderBy: mostly(['', 'orderBy: { field: CITY, direction: DESC }', 'orderBy: { field: CREATED_AT }'], ['orderBy: { field: NAME }']),
  after: mostly([''], ['after: "eyJrIjpudWxsLCJpZCI6IngifQ.AAAA"', 'after: "garbage"']),
});

function buildQuery(fields: string[], args: { first: number; filter: string; orderBy: string; after: string }, victim: CustomerPlain, single: boolean): string {
  const selection = fields.join(' ');
  const fragment = 'fragment F on Customer { name phone(purpose: CONTACT) address(purpose: CONTACT) idNumber(purpose: DSR) }';
  const filter = args.filter.replace('$PHONE', victim.phone ?? '').replace('$NAME', victim.name).replace('$EMAIL', victim.email ?? '');
  const root = single
    ? `customer(id: "${victim.id}") { ${selection} }`
    : `customers(${[`first: ${args.first}`, filter, args.orderBy, args.after].filter(Boolean).join(', ')}) { totalCount edges { cursor node { ${selection} } } }`;
  return `query { ${root} } ${selection.includes('...F') ? fragment : ''}`;
}

function forbiddenValues(principal: string): Array<{ value: string; exact: boolean }> {
  const out: Array<{ value: string; exact: boolean }> = [];
  for (const c of server.customers) {
    const allowed = new Set(mayRevealRaw[principal]!(c));
    for (const field of SENSITIVE) {
      const value = c[field];
      if (!value || allowed.has(field)) continue;
      // Short names can occur inside other values; compare them as whole strings.
      out.push({ value, exact: field === 'name' });
    }
  }
  return out;
}

function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) value.forEach((v) => strings(v, out));
  else if (value && typeof value === 'object') Object.entries(value).forEach(([k, v]) => (out.push(k), strings(v, out)));
  return out;
}

describe('no raw value a role may not see leaks through any query shape', () => {
  for (const principal of Object.keys(mayRevealRaw)) {
    it(`holds for ${principal}`, async () => {
      const forbidden = forbiddenValues(principal);
      await fc.assert(
        fc.asyncProperty(
          fc.array(customerFieldArb, { minLength: 1, maxLength: 4 }),
          argsArb,
          fc.nat({ max: server.customers.length - 1 }),
          fc.boolean(),
          async (fields, args, victimIndex, single) => {
            const victim = server.customers[victimIndex]!;
            const res = await gql(server, principal, buildQuery(fields, args, victim, single));
            expect(res.status).toBeLessThan(500);
            const found = new Set(strings(res.json));
            for (const { value, exact } of forbidden) {
              if (exact ? found.has(value) : res.text.includes(value)) {
                throw new Error(`${principal} received a raw value it may not see (field of customer ${victim.id})`);
              }
            }
          },
        ),
        { numRuns: 100, seed: 20261129 },
      );
    });
  }
});

/** The analytics surface: datasets and the export queue, for every role, with hostile arguments mixed in. */
const datasetRootArb = fc.oneof(
  fc
    .record({
      name: mostly(['customer_profile', 'regional_segments'], ['customers', '__proto__', '']),
      first: mostly([1, 20, 100], [0, 101, -5]),
      after: mostly([''], ['after: "garbage"', 'after: "eyJrIjpudWxsLCJpZCI6IngifQ.AAAA"']),
      extra: fc.constantFrom('', 'dataset { name k columns { name derivation } }', 'd2: totalCount'),
    })
    .map(({ name, first, after, extra }) => `dataset(name: ${JSON.stringify(name)}, first: ${first}${after ? `, ${after}` : ''}) { totalCount suppressed ${extra} nodes { values } pageInfo { endCursor } }`),
  fc.constantFrom(
    'datasets { name purpose columns { name quasiIdentifier } }',
    'exportRequests(first: 20) { nodes { id kind dataset customers state reason requestedBy } }',
    'exportRequest(id: "00000000-0000-4000-8000-000000000000") { id }',
  ),
);

describe('no identifier leaks through the analytics surface', () => {
  for (const principal of Object.keys(mayRevealRaw)) {
    it(`holds for ${principal}`, async () => {
      // Whatever the role: a dataset or the export queue never carries a customer's internal id or sensitive value.
      const forbidden = server.customers.flatMap((c) => [c.id, ...SENSITIVE.map((f) => c[f]).filter((v): v is string => Boolean(v))]);
      await fc.assert(
        fc.asyncProperty(fc.array(datasetRootArb, { minLength: 1, maxLength: 2 }), async (roots) => {
          const res = await gql(server, principal, `query { ${roots.map((r, i) => `q${i}: ${r}`).join(' ')} }`);
          expect(res.status).toBeLessThan(500);
          const found = new Set(strings(res.json));
          for (const value of forbidden) {
            if (found.has(value) || (value.length > 6 && res.text.includes(value))) throw new Error(`${principal} received a customer identifier through the analytics surface`);
          }
        }),
        { numRuns: 40, seed: 20261129 },
      );
    });
  }
});
