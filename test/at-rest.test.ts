import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskEmail, maskLast4 } from '../src/authz/masks.js';
import type { CustomerPlain } from '../src/crypto/customer-record.js';
import { blindIndex } from '../src/crypto/envelope.js';
import { shredCustomer } from '../src/crypto/shred.js';
import { queryRows } from '../src/db/execute.js';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

/**
 * Sensitive columns at rest (DESIGN.md): what a database dump holds, what a
 * reveal decrypts, what a moved ciphertext gives, what lookup by blind index
 * answers, and what is left of a customer whose data key was destroyed.
 */
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ customers: 60 });
});
afterAll(async () => {
  await server?.stop();
});

const db = () => server.running.db.db;
const CUSTOMER_TABLES = ['customers', 'customer_keys', 'consents', 'orders', 'interactions'];
const TRAIL = `query($t: String!) { auditTrail(traceId: $t) { action recordIds decision reason fields { denied } } }`;
const valuesOf = (c: CustomerPlain) => [c.phone, c.email, c.idNumber, c.address, c.birthDate].filter((v): v is string => !!v);
/** The n-th customer of an owner with every sensitive value present; each test takes its own. */
const pick = (n: number, owner = 'u-rep-1') => server.customers.filter((c) => c.ownerId === owner && c.email && c.idNumber && c.address)[n]!;

/** Every row of the customer tables as PostgreSQL renders it in text, the way a plain dump or a stolen backup shows it. */
async function plainDump(): Promise<string> {
  const parts = await Promise.all(CUSTOMER_TABLES.map((table) => queryRows(db(), sql`SELECT t::text AS line FROM ${sql.identifier(table)} t`)));
  return parts.flat().map((r) => String(r.line)).join('\n');
}

async function pgDump(url: string): Promise<string> {
  const tables = CUSTOMER_TABLES.flatMap((t) => ['--table', t]);
  const { stdout } = await promisify(execFile)('pg_dump', ['--data-only', ...tables, url], { maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

const hasPgDump = spawnSync('pg_dump', ['--version']).status === 0;

describe('the customer tables at rest', () => {
  it('hold none of the seeded phone numbers, emails, id numbers, addresses or birth dates', async () => {
    const dump = await plainDump();
    for (const c of server.customers) expect(dump.includes(c.id)).toBe(true);
    const values = server.customers.flatMap(valuesOf);
    expect(values.length).toBeGreaterThan(200);
    for (const value of values) expect(dump.includes(value), 'a personal value in the plain dump').toBe(false);
  });

  it.skipIf(!hasPgDump || !process.env.DATABASE_URL)('hold none of them in a pg_dump either', async () => {
    const database = server.config.database;
    if (database.kind !== 'postgres') return;
    const dump = await pgDump(database.url);
    expect(dump).toContain(server.customers[0]!.id);
    for (const value of server.customers.flatMap(valuesOf)) expect(dump.includes(value), 'a personal value in pg_dump').toBe(false);
  });
});

describe('reveal', () => {
  it('decrypts the stored values for the dpo (DSR) and for a manager of the department (CONTACT)', async () => {
    const c = pick(0);
    const dpo = await gql(server, 'u-dpo-1', `query($id: ID!) { customer(id: $id) { phone(purpose: DSR) email(purpose: DSR) address(purpose: DSR) idNumber(purpose: DSR) birthDate(purpose: DSR) } }`, { id: c.id });
    expect(dpo.json.errors).toBeUndefined();
    expect(dpo.json.data.customer).toEqual({ phone: c.phone, email: c.email, address: c.address, idNumber: c.idNumber, birthDate: c.birthDate });
    const mgr = await gql(server, 'u-mgr-1', `query($id: ID!) { customer(id: $id) { phone(purpose: CONTACT) email(purpose: CONTACT) } }`, { id: c.id });
    expect(mgr.json.data.customer).toEqual({ phone: c.phone, email: c.email });
  });
});

describe('a ciphertext moved to another row or column', () => {
  it('fails to decrypt: the field is null with DATA_UNAVAILABLE, no value leaves, and the failure is audited', async () => {
    // Customers of another department than the nested reads below.
    const [a, b, c] = [pick(0, 'u-rep-3'), pick(1, 'u-rep-3'), pick(2, 'u-rep-3')];
    await db().execute(sql`UPDATE customers SET phone_enc = (SELECT phone_enc FROM customers WHERE id = ${a.id}::uuid) WHERE id = ${b.id}::uuid`);
    await db().execute(sql`UPDATE customers SET email_enc = phone_enc WHERE id = ${c.id}::uuid`);
    const res = await gql(
      server,
      'u-dpo-1',
      `query($b: ID!, $c: ID!) { b: customer(id: $b) { phone(purpose: DSR) email(purpose: DSR) } c: customer(id: $c) { phone(purpose: DSR) email(purpose: DSR) } }`,
      { b: b.id, c: c.id },
    );
    expect(res.json.data).toEqual({ b: { phone: null, email: b.email }, c: { phone: c.phone, email: null } });
    const errors = res.json.errors.map((e: { path: string[]; extensions: { code: string } }) => ({ path: e.path, code: e.extensions.code }));
    expect(errors).toEqual(
      expect.arrayContaining([
        { path: ['b', 'phone'], code: 'DATA_UNAVAILABLE' },
        { path: ['c', 'email'], code: 'DATA_UNAVAILABLE' },
      ]),
    );
    expect(errors).toHaveLength(2);
    for (const value of [a.phone!, b.phone!, c.email!]) expect(res.text.includes(value)).toBe(false);

    const trail = await gql(server, 'u-auditor-1', TRAIL, { t: res.json.extensions.traceId });
    const faults = trail.json.data.auditTrail.filter((r: { reason: string | null }) => r.reason === 'enforcement fault: decrypt');
    expect(faults).toEqual(
      expect.arrayContaining([
        { action: 'deny', decision: 'deny', recordIds: [b.id], reason: 'enforcement fault: decrypt', fields: { denied: ['phone'] } },
        { action: 'deny', decision: 'deny', recordIds: [c.id], reason: 'enforcement fault: decrypt', fields: { denied: ['email'] } },
      ]),
    );
  });
});

describe('exact lookup by phone', () => {
  it('finds the customer through the blind index for customer_service, in any notation, without revealing the number', async () => {
    const c = pick(1);
    const p = c.phone!;
    for (const phone of [p, `+86 ${p.slice(0, 3)}-${p.slice(3, 7)}-${p.slice(7)}`]) {
      const res = await gql(server, 'u-cs-1', `query($p: String) { customers(filter: { phone: $p }) { totalCount edges { node { id phone } } } }`, { p: phone });
      expect(res.json.errors).toBeUndefined();
      expect(res.json.data.customers).toEqual({ totalCount: 1, edges: [{ node: { id: c.id, phone: maskLast4(p) } }] });
      expect(res.text.includes(p)).toBe(false);
    }
  });
});

describe(shredCustomer.name, () => {
  let victim: CustomerPlain;
  /** What an attacker would search the answers for: the values and their masked renditions. */
  let traces: string[];
  beforeAll(async () => {
    victim = pick(2);
    traces = [...valuesOf(victim), maskLast4(victim.phone!), maskEmail(victim.email!)];
    const before = await gql(server, 'u-dpo-1', `query($id: ID!) { customer(id: $id) { phone(purpose: DSR) } }`, { id: victim.id });
    expect(before.json.data.customer.phone).toBe(victim.phone);
    expect(await shredCustomer(db(), victim.id)).toBe('shredded');
  });

  const expectNoTrace = (text: string) => {
    for (const t of traces) expect(text.includes(t), 'a trace of a shredded value').toBe(false);
  };

  it('reports an already shredded and an unknown customer', async () => {
    expect(await shredCustomer(db(), victim.id)).toBe('already');
    expect(await shredCustomer(db(), '00000000-0000-4000-8000-000000000000')).toBe('not_found');
  });

  it('leaves no key, no index and no mask in the database, only undecryptable ciphertext', async () => {
    expect(await queryRows(db(), sql`SELECT 1 FROM customer_keys WHERE customer_id = ${victim.id}::uuid`)).toEqual([]);
    const [row] = await queryRows(db(), sql`SELECT t::text AS line, phone_enc IS NOT NULL AS sealed FROM customers t WHERE id = ${victim.id}::uuid`);
    expect(row!.sealed).toBe(true);
    expectNoTrace(String(row!.line));
    const key = server.config.keys.blindIndexKey;
    const matches = await queryRows(
      db(),
      sql`SELECT id FROM customers WHERE phone_bidx = ${blindIndex(key, 'phone', victim.phone!)} OR email_bidx = ${blindIndex(key, 'email', victim.email!)}`,
    );
    expect(matches).toEqual([]);
  });

  it('answers a reveal by the dpo with null and DATA_UNAVAILABLE on every field, audited as erased', async () => {
    const res = await gql(
      server,
      'u-dpo-1',
      `query($id: ID!) { customer(id: $id) { id p: phone(purpose: DSR) e: email(purpose: DSR) a: address(purpose: DSR) i: idNumber(purpose: DSR) b: birthDate(purpose: DSR) } }`,
      { id: victim.id },
    );
    expect(res.json.data.customer).toEqual({ id: victim.id, p: null, e: null, a: null, i: null, b: null });
    const paths = res.json.errors.map((e: { path: string[]; extensions: { code: string } }) => `${e.path.join('.')}:${e.extensions.code}`);
    expect(paths.sort()).toEqual(['a', 'b', 'e', 'i', 'p'].map((f) => `customer.${f}:DATA_UNAVAILABLE`));
    expectNoTrace(res.text);
    const trail = await gql(server, 'u-auditor-1', TRAIL, { t: res.json.extensions.traceId });
    expect(trail.json.data.auditTrail).toContainEqual({ action: 'deny', decision: 'deny', recordIds: [victim.id], reason: 'enforcement fault: erased', fields: { denied: [] } });
    const read = trail.json.data.auditTrail.find((r: { action: string }) => r.action === 'read');
    expect(read.fields.denied).toEqual(['address', 'birthDate', 'email', 'idNumber', 'phone']);
  });

  it('answers masked reads with null, not with a rendition of the old values', async () => {
    const res = await gql(server, 'u-dpo-1', `query($id: ID!) { customer(id: $id) { phone email address idNumber birthDate } }`, { id: victim.id });
    expect(res.json).toMatchObject({ data: { customer: { phone: null, email: null, address: null, idNumber: null, birthDate: null } } });
    expectNoTrace(res.text);
  });

  it('is found by no lookup, in any notation', async () => {
    const p = victim.phone!;
    for (const phone of [p, `+86${p}`, `${p.slice(0, 3)} ${p.slice(3, 7)} ${p.slice(7)}`]) {
      const res = await gql(server, 'u-cs-1', `query($p: String) { customers(filter: { phone: $p }) { totalCount edges { node { id } } } }`, { p: phone });
      expect(res.json.data.customers).toEqual({ totalCount: 0, edges: [] });
    }
  });

  it('yields nothing through nested reads of its owner and manager, while the other customers stay readable', async () => {
    const query = `{ customers(first: 100) { edges { node { id phone(purpose: CONTACT) email(purpose: CONTACT) address orders(first: 2) { edges { node { id amount } } } interactions(first: 2) { edges { node { channel summary } } } } } } }`;
    for (const principal of ['u-rep-1', 'u-mgr-1']) {
      const res = await gql(server, principal, query);
      expectNoTrace(res.text);
      const edges = res.json.data.customers.edges;
      const at = edges.findIndex((e: { node: { id: string } }) => e.node.id === victim.id);
      expect(at).toBeGreaterThanOrEqual(0);
      expect(edges[at].node).toMatchObject({ phone: null, email: null, address: null });
      const errors = res.json.errors.map((e: { path: Array<string | number>; extensions: { code: string } }) => [e.path.join('.'), e.extensions.code]);
      expect(errors).toEqual(
        expect.arrayContaining([
          [`customers.edges.${at}.node.phone`, 'DATA_UNAVAILABLE'],
          [`customers.edges.${at}.node.email`, 'DATA_UNAVAILABLE'],
        ]),
      );
      // Only the shredded customer's cells fail.
      expect(errors.every(([path]: [string]) => path.startsWith(`customers.edges.${at}.`))).toBe(true);
      const other = edges.find((e: { node: { id: string } }) => e.node.id !== victim.id).node;
      expect(other.phone).toBe(server.customers.find((c) => c.id === other.id)!.phone);
    }
  });

  it('refuses a rectification instead of sealing new values under a new key', async () => {
    const res = await gql(server, 'u-dpo-1', `mutation($id: ID!) { updateCustomer(id: $id, input: { phone: "13900001111", email: "new@example.cn" }) { id } }`, { id: victim.id });
    expect(res.json.data.updateCustomer).toBeNull();
    expect(res.json.errors[0].extensions.code).toBe('FORBIDDEN');
    expect(res.json.errors[0].message).toMatch(/data key was destroyed/);
    expect(await queryRows(db(), sql`SELECT 1 FROM customer_keys WHERE customer_id = ${victim.id}::uuid`)).toEqual([]);
    const [row] = await queryRows(db(), sql`SELECT phone_masked, phone_bidx, email_masked, email_bidx FROM customers WHERE id = ${victim.id}::uuid`);
    expect(row).toEqual({ phone_masked: null, phone_bidx: null, email_masked: null, email_bidx: null });
  });

  it('keeps the audit trail of the customer free of its values', async () => {
    const res = await gql(server, 'u-auditor-1', `query($c: String) { auditEvents(filter: { customerId: $c }, first: 100) { edges { node { principalId action purpose reason recordIds fields { raw masked revealed denied } } } } }`, { c: victim.id });
    expect(res.json.data.auditEvents.edges.length).toBeGreaterThan(0);
    expectNoTrace(res.text);
    const rows = await queryRows(db(), sql`SELECT t::text AS line FROM audit_events t`);
    expectNoTrace(rows.map((r) => String(r.line)).join('\n'));
  });

  it('racing a rectification, never leaves a key, a mask or an index behind', async () => {
    const tampered = new Set([0, 1, 2].map((n) => pick(n, 'u-rep-3').id));
    const targets = server.customers.filter((c) => c.ownerId === 'u-rep-3' && !tampered.has(c.id)).slice(-6);
    expect(targets).toHaveLength(6);
    const outcomes = await Promise.all(
      targets.map(async (c, i) => {
        const phone = `1370000${String(1000 + i)}`;
        const [update, shred] = await Promise.all([
          gql(server, 'u-dpo-1', `mutation($id: ID!, $p: String!) { updateCustomer(id: $id, input: { phone: $p }) { id } }`, { id: c.id, p: phone }),
          shredCustomer(db(), c.id),
        ]);
        return { c, phone, update: update.json, shred };
      }),
    );
    for (const { c, phone, update, shred } of outcomes) {
      expect(shred).toBe('shredded');
      if (update.errors) expect(update.errors[0].extensions.code).toBe('FORBIDDEN');
      const [row] = await queryRows(db(), sql`SELECT phone_masked, phone_bidx, email_masked, email_bidx, (SELECT count(*)::int FROM customer_keys WHERE customer_id = ${c.id}::uuid) AS keys FROM customers WHERE id = ${c.id}::uuid`);
      expect(row).toEqual({ phone_masked: null, phone_bidx: null, email_masked: null, email_bidx: null, keys: 0 });
      const lookup = await gql(server, 'u-cs-1', `query($p: String) { customers(filter: { phone: $p }) { totalCount } }`, { p: phone });
      expect(lookup.json.data.customers.totalCount).toBe(0);
    }
  });
});
