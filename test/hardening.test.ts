import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
let production: TestServer;
beforeAll(async () => {
  server = await startTestServer({ customers: 20 });
  production = await startTestServer({
    customers: 20,
    env: {
      NODE_ENV: 'production',
      JWT_SECRET: 'a-production-secret-that-is-long-enough-0123456789',
      KEYRING: `k1:${Buffer.alloc(32, 3).toString('base64')}`,
      BLIND_INDEX_KEY: Buffer.alloc(32, 4).toString('base64'),
      CURSOR_SECRET: 'a-production-cursor-secret-that-is-long-enough-01',
      PSEUDONYM_KEY: Buffer.alloc(32, 5).toString('base64'),
    },
  });
});
afterAll(async () => {
  await server?.stop();
  await production?.stop();
});

/** Runs a request and reports how many SQL statements it caused. */
async function statementsFor(run: () => Promise<unknown>): Promise<number> {
  // Authentication reads the principal (cached); warm it so only the request's own SQL counts.
  await gql(server, 'u-mgr-1', '{ me { id } }');
  const before = server.running.db.stats.statements;
  await run();
  return server.running.db.stats.statements - before;
}

describe('limits refuse abuse before any SQL runs', () => {
  const cases: Array<[string, string]> = [
    ['depth', `{ customers { edges { node { ${'... on Customer { '.repeat(14)}id${' }'.repeat(14)} } } } }`],
    ['aliases', `{ ${Array.from({ length: 40 }, (_, i) => `a${i}: me { id }`).join(' ')} }`],
    ['tokens', `{ customers(first: 1) { edges { node { ${'id '.repeat(2500)} } } } }`],
    ['directives', `{ me { id ${'@include(if: true) '.repeat(40)} } }`],
  ];

  for (const [limit, query] of cases) {
    it(`refuses too many ${limit}`, async () => {
      let res: Awaited<ReturnType<typeof gql>> | undefined;
      const statements = await statementsFor(async () => (res = await gql(server, 'u-mgr-1', query)));
      expect(res!.json.errors?.[0]).toBeDefined();
      expect(res!.json.data ?? null).toBeNull();
      expect(statements).toBe(0);
    });
  }

  it('lets a normal nested page through: 20 customers with their 10 latest orders', async () => {
    const res = await gql(server, 'u-mgr-1', `{ customers(first: 20) { edges { node { id name phone email city orders(first: 10) { edges { node { id amount placedAt status } } } } } } }`);
    expect(res.json.errors).toBeUndefined();
  });

  it('refuses a query whose cost is far beyond any page the UI needs', async () => {
    const fields = 'id name phone email city province tier segment createdAt ownerId';
    const orders = Array.from({ length: 12 }, (_, i) => `o${i}: orders(first: 10) { edges { node { id amount placedAt status product } } }`).join(' ');
    const res = await gql(server, 'u-mgr-1', `{ customers(first: 100) { edges { node { ${fields} ${orders} } } } }`);
    expect(res.json.errors[0].message).toMatch(/[Cc]ost/);
  });

  it('lets the deepest legitimate query through (customers → orders, through fragments)', async () => {
    const nested = `query { customers { edges { node { ...A } } } } fragment A on Customer { orders { edges { node { ...B } } } } fragment B on Order { id }`;
    expect((await gql(server, 'u-mgr-1', nested)).json.errors).toBeUndefined();
  });

  it('refuses a page larger than the cap before SQL', async () => {
    let res: Awaited<ReturnType<typeof gql>> | undefined;
    const statements = await statementsFor(async () => (res = await gql(server, 'u-mgr-1', '{ customers(first: 1000) { totalCount } }')));
    expect(res!.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    expect(statements).toBe(0);
  });

  it('refuses batched requests', async () => {
    const token = await server.token('u-mgr-1');
    const res = await server.post([{ query: '{ me { id } }' }, { query: '{ me { id } }' }], { authorization: `Bearer ${token}` });
    expect(res.status).toBe(400);
  });

  it('refuses an oversized body with 413', async () => {
    const token = await server.token('u-mgr-1');
    const res = await server.post({ query: `{ me { id } } # ${'x'.repeat(1_100_000)}` }, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(413);
  });

  it('refuses a GET mutation-less request without CSRF header (CSRF prevention)', async () => {
    const res = await fetch(`${server.url}?query=${encodeURIComponent('{ me { id } }')}`);
    expect(res.status).toBe(400);
  });
});

describe('production mode', () => {
  it('has introspection off', async () => {
    const res = await gql(production, 'u-mgr-1', '{ __schema { types { name } } }');
    expect(res.json.errors[0].extensions.code).toBe('GRAPHQL_VALIDATION_FAILED');
    expect(res.text).not.toContain('"Customer"');
  });

  it('gives no field suggestions', async () => {
    const res = await gql(production, 'u-mgr-1', '{ customers { edges { node { phon } } } }');
    expect(res.json.errors[0].message).not.toMatch(/Did you mean/);
    const dev = await gql(server, 'u-mgr-1', '{ customers { edges { node { phon } } } }');
    expect(dev.json.errors[0].message).toMatch(/Did you mean/);
  });

  it('ignores prototype-polluting keys in inputs', async () => {
    const res = await gql(production, 'u-rep-1', `query($f: CustomerFilter) { customers(filter: $f) { totalCount } }`, {
      f: JSON.parse('{"__proto__": {"ownerId": "u-rep-2"}, "constructor": {"x": 1}, "__caslSubjectType__": "Principal"}'),
    });
    const own = production.customers.filter((c) => c.ownerId === 'u-rep-1').length;
    if (res.json.errors) expect(res.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    else expect(res.json.data.customers.totalCount).toBe(own);
    expect(({} as Record<string, unknown>).ownerId).toBeUndefined();
  });
});
