import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskEmail, maskLast4 } from '../src/authz/masks.js';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer();
});
afterAll(async () => {
  await server?.stop();
});

const LIST = `query($first: Int) { customers(first: $first) { totalCount edges { node { id ownerId department name phone email } } } }`;
const byId = (id: string) => server.customers.find((c) => c.id === id)!;

async function list(principal: string) {
  const res = await gql(server, principal, LIST, { first: 100 });
  expect(res.json.errors).toBeUndefined();
  return res.json.data.customers as { totalCount: number; edges: Array<{ node: Record<string, string | null> }> };
}

describe('sales_rep', () => {
  it('sees exactly its own customers, with totalCount under the row policy', async () => {
    const own = server.customers.filter((c) => c.ownerId === 'u-rep-1');
    const page = await list('u-rep-1');
    expect(page.totalCount).toBe(own.length);
    expect(new Set(page.edges.map((e) => e.node.ownerId))).toEqual(new Set(['u-rep-1']));
  });

  it('gets phone and email masked by default, name raw', async () => {
    const page = await list('u-rep-1');
    for (const { node } of page.edges) {
      const plain = byId(node.id!);
      expect(node.phone).toBe(plain.phone ? maskLast4(plain.phone) : null);
      expect(node.email).toBe(plain.email ? maskEmail(plain.email) : null);
      expect(node.name).toBe(plain.name);
    }
  });

  it('reveals phone and email of own customers only with purpose CONTACT', async () => {
    const q = `{ customers(first: 5) { edges { node { id a: phone(purpose: CONTACT) b: phone(purpose: DSR) c: email(purpose: CONTACT) d: address(purpose: CONTACT) } } } }`;
    const res = await gql(server, 'u-rep-1', q);
    for (const { node } of res.json.data.customers.edges) {
      const plain = byId(node.id);
      expect(node.a).toBe(plain.phone);
      expect(node.b).toBe(maskLast4(plain.phone!));
      expect(node.c).toBe(plain.email);
      expect(node.d).not.toBe(plain.address);
    }
  });

  it('cannot read the id number or birth date at all', async () => {
    for (const field of ['idNumber', 'birthDate(purpose: DSR)', 'gender']) {
      const res = await gql(server, 'u-rep-1', `{ customers(first: 1) { edges { node { id ${field} } } } }`);
      expect(res.json.errors[0].extensions.code).toBe('FORBIDDEN');
      expect(res.json.data).toBeNull();
    }
  });

  it('answers a customer of another rep exactly like a missing id', async () => {
    const other = server.customers.find((c) => c.ownerId === 'u-rep-2')!;
    const q = `query($id: ID!) { customer(id: $id) { id name } }`;
    const foreign = await gql(server, 'u-rep-1', q, { id: other.id });
    const missing = await gql(server, 'u-rep-1', q, { id: '00000000-0000-4000-8000-000000000000' });
    // Same body but for the trace id, which differs per request.
    expect(foreign.json.data).toEqual({ customer: null });
    expect(foreign.json.errors).toBeUndefined();
    expect(missing.json.data).toEqual(foreign.json.data);
    expect(missing.json.errors).toBeUndefined();
  });

  it('may not filter by phone nor order by a field it lacks sort on', async () => {
    const phone = server.customers.find((c) => c.ownerId === 'u-rep-1')!.phone;
    const f = await gql(server, 'u-rep-1', `query($p: String) { customers(filter: { phone: $p }) { totalCount } }`, { p: phone });
    expect(f.json.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(f.text).not.toContain(phone!);
    const s = await gql(server, 'u-rep-1', `{ customers(orderBy: { field: CITY }) { totalCount } }`);
    expect(s.json.errors).toBeUndefined();
  });

  it('a rep of another department sees none of department east', async () => {
    const page = await list('u-rep-3');
    expect(page.edges.every((e) => e.node.department === 'west' && e.node.ownerId === 'u-rep-3')).toBe(true);
    expect(page.totalCount).toBe(server.customers.filter((c) => c.ownerId === 'u-rep-3').length);
  });
});

describe('sales_manager', () => {
  it('sees its whole department and reveals address with purpose', async () => {
    const dept = server.customers.filter((c) => c.department === 'east');
    const page = await list('u-mgr-1');
    expect(page.totalCount).toBe(dept.length);
    const res = await gql(server, 'u-mgr-1', `{ customers(first: 3) { edges { node { id address(purpose: CONTACT) masked: address } } } }`);
    for (const { node } of res.json.data.customers.edges) {
      const plain = byId(node.id);
      expect(node.address).toBe(plain.address);
      expect(node.masked).not.toBe(plain.address);
    }
  });
});

describe('customer_service', () => {
  it('sees all customers with name and phone masked, and never email', async () => {
    const res = await gql(server, 'u-cs-1', `{ customers(first: 100) { totalCount edges { node { id name phone(purpose: CONTACT) } } } }`);
    expect(res.json.data.customers.totalCount).toBe(server.customers.length);
    for (const { node } of res.json.data.customers.edges) {
      const plain = byId(node.id);
      expect(node.name).not.toBe(plain.name);
      expect(node.name.startsWith([...plain.name][0]!)).toBe(true);
      expect(node.phone).toBe(plain.phone ? maskLast4(plain.phone) : null);
    }
    const email = await gql(server, 'u-cs-1', `{ customers(first: 1) { edges { node { email } } } }`);
    expect(email.json.errors[0].extensions.code).toBe('FORBIDDEN');
  });

  it('finds a customer by exact phone without learning the phone', async () => {
    const target = server.customers[7]!;
    const res = await gql(server, 'u-cs-1', `query($p: String) { customers(filter: { phone: $p }) { totalCount edges { node { id phone } } } }`, {
      p: target.phone,
    });
    expect(res.json.data.customers.totalCount).toBe(1);
    expect(res.json.data.customers.edges[0].node).toEqual({ id: target.id, phone: maskLast4(target.phone!) });
  });

  it('may neither filter nor sort by name', async () => {
    const f = await gql(server, 'u-cs-1', `{ customers(filter: { name: "x" }) { totalCount } }`);
    expect(f.json.errors[0].extensions.code).toBe('FORBIDDEN');
    const s = await gql(server, 'u-cs-1', `{ customers(orderBy: { field: NAME }) { totalCount } }`);
    expect(s.json.errors[0].extensions.code).toBe('FORBIDDEN');
  });
});

describe('dpo', () => {
  it('reveals the id number and birth date only with purpose DSR', async () => {
    const res = await gql(server, 'u-dpo-1', `{ customers(first: 5) { totalCount edges { node { id idNumber(purpose: DSR) masked: idNumber birthDate(purpose: DSR) band: birthDate } } } }`);
    expect(res.json.data.customers.totalCount).toBe(server.customers.length);
    for (const { node } of res.json.data.customers.edges) {
      const plain = byId(node.id);
      expect(node.idNumber).toBe(plain.idNumber);
      expect(node.birthDate).toBe(plain.birthDate);
      expect(node.masked).not.toBe(plain.idNumber);
      expect(node.band).not.toBe(plain.birthDate);
    }
  });
});

describe('roles without customer access', () => {
  for (const principal of ['u-analyst-1', 'u-auditor-1', 'u-admin-1']) {
    it(`${principal} is refused customers, even a bare count`, async () => {
      for (const q of ['{ customers { totalCount } }', '{ customer(id: "00000000-0000-4000-8000-000000000000") { id } }']) {
        const res = await gql(server, principal, q);
        expect(res.json.errors[0].extensions.code).toBe('FORBIDDEN');
      }
    });
  }
});

describe('departed principal', () => {
  it('is refused with a valid token', async () => {
    const res = await gql(server, 'u-gone-1', '{ me { id } }');
    expect(res.status).toBe(403);
    expect(res.json.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(res.json.data).toBeUndefined();
  });
});
