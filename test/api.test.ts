import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskLast4 } from '../src/authz/masks.js';
import { Attr, SpanName } from '../src/telemetry/names.js';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

const spans = new InMemorySpanExporter();
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ customers: 60, spanExporter: spans });
});
afterAll(async () => {
  await server?.stop();
});

const ownOf = (principal: string) => server.customers.filter((c) => c.ownerId === principal);

describe('authentication', () => {
  const sign = (secret: string, exp: string | number) =>
    new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject('u-rep-1').setIssuer('custos').setAudience('custos').setExpirationTime(exp).sign(new TextEncoder().encode(secret));

  it('refuses a missing, malformed, wrongly signed or expired token with 401 UNAUTHENTICATED', async () => {
    const wrong = await sign('another-secret-that-is-long-enough-123456', '1h');
    const expired = await sign(server.config.auth.secret!, Math.floor(Date.now() / 1000) - 3600);
    for (const header of [undefined, 'Bearer', 'Basic abc', `Bearer ${wrong}`, `Bearer ${expired}`, 'Bearer a.b.c']) {
      const res = await server.post({ query: '{ me { id } }' }, header ? { authorization: header } : {});
      expect(res.status).toBe(401);
      expect(res.json.errors[0].extensions.code).toBe('UNAUTHENTICATED');
      expect(res.text).not.toMatch(/at .*\.ts/);
    }
  });

  it('refuses a valid token for an unknown principal', async () => {
    const res = await gql(server, 'u-nobody', '{ me { id } }');
    expect(res.status).toBe(401);
  });
});

describe('input validation', () => {
  it('rejects a bad id, an oversize page and a forged cursor with BAD_USER_INPUT', async () => {
    for (const q of ['{ customer(id: "not-a-uuid") { id } }', '{ customers(first: 101) { totalCount } }', '{ customers(first: 0) { totalCount } }', '{ customers(after: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") { totalCount } }']) {
      const res = await gql(server, 'u-rep-1', q);
      expect(res.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    }
  });

  it('pages through the whole row set with opaque cursors, without gaps or duplicates', async () => {
    const seen: string[] = [];
    let after: string | null = null;
    for (let i = 0; i < 20; i++) {
      const res = await gql(server, 'u-mgr-1', `query($after: String) { customers(first: 7, after: $after, orderBy: { field: CITY }) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`, { after });
      const page = res.json.data.customers;
      seen.push(...page.edges.map((e: { node: { id: string } }) => e.node.id));
      if (!page.pageInfo.hasNextPage) break;
      after = page.pageInfo.endCursor;
    }
    const expected = server.customers.filter((c) => c.department === 'east').map((c) => c.id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(new Set(seen)).toEqual(new Set(expected));
  });

  it('a cursor minted for one principal or ordering is refused for another', async () => {
    const res = await gql(server, 'u-mgr-1', '{ customers(first: 1) { pageInfo { endCursor } } }');
    const cursor = res.json.data.customers.pageInfo.endCursor;
    const other = await gql(server, 'u-rep-1', `query($c: String) { customers(after: $c) { totalCount } }`, { c: cursor });
    expect(other.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const reordered = await gql(server, 'u-mgr-1', `query($c: String) { customers(after: $c, orderBy: { field: CITY }) { totalCount } }`, { c: cursor });
    expect(reordered.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });
});

describe('updateCustomer', () => {
  const mutation = `mutation($id: ID!, $input: UpdateCustomerInput!) { updateCustomer(id: $id, input: $input) { id phone revealed: phone(purpose: CONTACT) } }`;

  it('rectifies the phone of an own customer: stored sealed, masked and revealable', async () => {
    const target = ownOf('u-rep-1')[0]!;
    const res = await gql(server, 'u-rep-1', mutation, { id: target.id, input: { phone: '13912345678' } });
    expect(res.json.data.updateCustomer).toEqual({ id: target.id, phone: maskLast4('13912345678'), revealed: '13912345678' });
    const lookup = await gql(server, 'u-cs-1', `{ customers(filter: { phone: "13912345678" }) { edges { node { id } } } }`);
    expect(lookup.json.data.customers.edges).toEqual([{ node: { id: target.id } }]);
  });

  it('rejects an invalid phone or email with BAD_USER_INPUT and writes nothing', async () => {
    const target = ownOf('u-rep-1')[1]!;
    for (const input of [{ phone: '12345' }, { email: 'not-an-email' }, {}]) {
      const res = await gql(server, 'u-rep-1', mutation, { id: target.id, input });
      expect(res.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    }
    const after = await gql(server, 'u-rep-1', `query($id: ID!) { customer(id: $id) { phone(purpose: CONTACT) } }`, { id: target.id });
    expect(after.json.data.customer.phone).toBe(target.phone);
  });

  it('answers a customer of another rep as missing and changes nothing', async () => {
    const foreign = ownOf('u-rep-2')[0]!;
    const res = await gql(server, 'u-rep-1', mutation, { id: foreign.id, input: { phone: '13700000000' } });
    expect(res.json.data.updateCustomer).toBeNull();
    const check = await gql(server, 'u-rep-2', `query($id: ID!) { customer(id: $id) { phone(purpose: CONTACT) } }`, { id: foreign.id });
    expect(check.json.data.customer.phone).toBe(foreign.phone);
  });

  it('refuses customer_service, which may not update contact fields', async () => {
    const res = await gql(server, 'u-cs-1', mutation.replace(' revealed: phone(purpose: CONTACT)', ''), { id: server.customers[0]!.id, input: { phone: '13700000001' } });
    expect(res.json.errors[0].extensions.code).toBe('FORBIDDEN');
  });
});

describe('nested connections', () => {
  it('lists orders and interactions per customer under the same policy', async () => {
    const res = await gql(server, 'u-rep-1', `{ customers(first: 5) { edges { node { id orders(first: 2) { totalCount edges { node { id amount placedAt } } pageInfo { hasNextPage } } interactions(first: 1) { totalCount edges { node { channel } } } } } } }`);
    expect(res.json.errors).toBeUndefined();
    for (const { node } of res.json.data.customers.edges) {
      expect(node.orders.edges.length).toBeLessThanOrEqual(2);
      expect(node.orders.pageInfo.hasNextPage).toBe(node.orders.totalCount > 2);
      const times = node.orders.edges.map((e: { node: { placedAt: string } }) => e.node.placedAt);
      expect([...times].sort().reverse()).toEqual(times);
    }
  });

  it("counts every child the caller may see in totalCount, whatever the page, and counts nothing when totalCount is not asked", async () => {
    type Orders = { totalCount?: number; edges: { node: { id: string } }[]; pageInfo: { hasNextPage: boolean } };
    const orderStatements = (traceId: string) =>
      spans
        .getFinishedSpans()
        .filter((s) => s.spanContext().traceId === traceId && s.name === SpanName.sql && String(s.attributes[Attr.dbStatement]).includes('FROM "orders"'))
        .map((s) => String(s.attributes[Attr.dbStatement]));
    const ask = async (query: string) => {
      const res = await gql(server, 'u-mgr-1', query);
      expect(res.json.errors).toBeUndefined();
      return { nodes: res.json.data.customers.edges.map((e: { node: { all: Orders; page: Orders; bare: Orders } }) => e.node), traceId: res.json.extensions.traceId as string };
    };
    const page = '{ edges { node { id } } pageInfo { hasNextPage } }';
    const counted = await ask(`{ customers(first: 5) { edges { node { all: orders(first: 40) { totalCount edges { node { id } } pageInfo { hasNextPage } } page: orders(first: 1) { totalCount ${page.slice(1)} } } } }`);
    let withOrders = 0;
    for (const node of counted.nodes) {
      expect(node.all.pageInfo.hasNextPage).toBe(false);
      expect(node.page.totalCount).toBe(node.all.edges.length);
      expect(node.all.totalCount).toBe(node.all.edges.length);
      expect(node.page.pageInfo.hasNextPage).toBe(node.all.edges.length > 1);
      if (node.all.edges.length > 1) withOrders += 1;
    }
    expect(withOrders).toBeGreaterThan(0);
    const [countingStatement] = orderStatements(counted.traceId);
    expect(countingStatement).toMatch(/count\(\*\)/);

    const bare = await ask(`{ customers(first: 5) { edges { node { bare: orders(first: 1) ${page} } } } }`);
    const statements = orderStatements(bare.traceId);
    expect(statements).toHaveLength(1);
    expect(statements[0]).not.toMatch(/count\(/i);
    bare.nodes.forEach((node: { bare: Orders }, i: number) => {
      expect(node.bare.edges.map((e) => e.node.id)).toEqual(counted.nodes[i].page.edges.map((e: { node: { id: string } }) => e.node.id));
      expect(node.bare.pageInfo.hasNextPage).toBe(counted.nodes[i].page.pageInfo.hasNextPage);
    });
  });

  it('keeps totalCount and the order of a page whatever the cursor, past the last child included', async () => {
    type Orders = { totalCount: number; edges: { cursor: string; node: { id: string; placedAt: string } }[]; pageInfo: { hasNextPage: boolean } };
    const orders = '{ totalCount edges { cursor node { id placedAt } } pageInfo { hasNextPage } }';
    const all = await gql(server, 'u-mgr-1', `{ customers(first: 8) { edges { node { id orders(first: 40) ${orders} } } } }`);
    expect(all.json.errors).toBeUndefined();
    const parents = all.json.data.customers.edges.map((e: { node: { id: string; orders: Orders } }) => e.node).filter((n: { orders: Orders }) => n.orders.edges.length > 2);
    expect(parents.length).toBeGreaterThan(0);
    for (const parent of parents as Array<{ id: string; orders: Orders }>) {
      const { edges, totalCount } = parent.orders;
      expect(totalCount).toBe(edges.length);
      const newestFirst = edges.map((e) => `${e.node.placedAt}|${e.node.id}`);
      expect(newestFirst).toEqual([...newestFirst].sort().reverse());
      for (const [i, from] of [[0, edges[0]!], [edges.length - 1, edges.at(-1)!]] as const) {
        const res = await gql(server, 'u-mgr-1', `query($id: ID!, $after: String) { customer(id: $id) { orders(first: 1, after: $after) ${orders} } }`, { id: parent.id, after: from.cursor });
        expect(res.json.errors).toBeUndefined();
        const next: Orders = res.json.data.customer.orders;
        expect(next.totalCount).toBe(totalCount);
        expect(next.edges.map((e) => e.node.id)).toEqual(edges.slice(i + 1, i + 2).map((e) => e.node.id));
        expect(next.pageInfo.hasNextPage).toBe(i + 2 < edges.length);
      }
    }
  });

  it('addInteraction records a contact on an own customer and refuses others', async () => {
    const own = ownOf('u-rep-1')[2]!;
    const m = `mutation($id: ID!) { addInteraction(customerId: $id, channel: CALL, summary: "回访确认收货") { channel summary principalId } }`;
    const ok = await gql(server, 'u-rep-1', m, { id: own.id });
    expect(ok.json.data.addInteraction).toEqual({ channel: 'CALL', summary: '回访确认收货', principalId: 'u-rep-1' });
    const foreign = await gql(server, 'u-rep-1', m, { id: ownOf('u-rep-3')[0]!.id });
    expect(foreign.json.data.addInteraction).toBeNull();
  });
});
