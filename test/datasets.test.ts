import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { quasiColumns } from '../src/authz/dataset/anonymity.js';
import { DatasetReader } from '../src/authz/dataset/reader.js';
import { consentsFor } from '../src/db/seed/generate.js';
import { queryRows } from '../src/db/execute.js';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ customers: 400 });
});
afterAll(async () => {
  await server?.stop();
});

const PAGE = `query ($name: String!, $first: Int!, $after: String) {
  dataset(name: $name, first: $first, after: $after) {
    totalCount suppressed generalized
    dataset { name k purpose columns { name type quasiIdentifier } }
    nodes { values }
    pageInfo { hasNextPage endCursor }
  }
}`;

type Values = Record<string, string | number | null>;

async function pullAll(name: string, principal = 'u-analyst-1', first = 100) {
  const rows: Values[] = [];
  let after: string | null = null;
  let meta: any;
  for (;;) {
    const res = await gql(server, principal, PAGE, { name, first, after });
    expect(res.json.errors, JSON.stringify(res.json.errors)).toBeUndefined();
    meta = res.json.data.dataset;
    rows.push(...meta.nodes.map((n: { values: Values }) => n.values));
    if (!meta.pageInfo.hasNextPage) break;
    after = meta.pageInfo.endCursor;
  }
  return { rows, meta };
}

/** Customers by their consent to analytics, from the deterministic seed. */
function byConsent() {
  const active = new Set<string>();
  const withdrawn = new Set<string>();
  server.customers.forEach((c, i) => {
    for (const consent of consentsFor(server.plan, i, c)) {
      if (consent.purpose !== 'analytics') continue;
      (consent.withdrawnAt ? withdrawn : active).add(c.id);
    }
  });
  return { active, withdrawn };
}

describe('minimized datasets', () => {
  it('holds no direct identifier of any seeded customer, in any row', async () => {
    const { rows } = await pullAll('customer_profile');
    expect(rows.length).toBeGreaterThan(50);
    const text = JSON.stringify(rows);
    for (const c of server.customers) {
      for (const value of [c.id, c.name, c.phone, c.email, c.idNumber, c.address, c.birthDate]) {
        if (value) expect(text.includes(value), 'a direct identifier leaked into the dataset').toBe(false);
      }
    }
    expect(Object.keys(rows[0]!).sort()).toEqual(
      ['ageBand', 'channelCount', 'gender', 'lastOrderMonth', 'orderCount', 'pid', 'province', 'spendBand', 'tier', 'topChannel'].sort(),
    );
  });

  it.each(['customer_profile', 'regional_segments'])('%s: every released quasi-identifier group has at least k rows', async (name) => {
    const { rows, meta } = await pullAll(name);
    const quasi = meta.dataset.columns.filter((c: { quasiIdentifier: boolean }) => c.quasiIdentifier).map((c: { name: string }) => c.name);
    expect(quasi.length).toBeGreaterThan(0);
    const groups = new Map<string, number>();
    for (const row of rows) {
      const key = JSON.stringify(quasi.map((q: string) => row[q]));
      groups.set(key, (groups.get(key) ?? 0) + 1);
    }
    for (const [key, count] of groups) expect(count, `group ${key}`).toBeGreaterThanOrEqual(meta.dataset.k);
    expect(rows.length).toBe(meta.totalCount);
  });

  it('releases only customers with an active consent, and counts every withheld one as suppressed', async () => {
    const { rows, meta } = await pullAll('customer_profile');
    const def = server.running.bundle.datasets.get('customer_profile')!;
    const reader = new DatasetReader(def, server.config.pseudonymKey);
    const { active, withdrawn } = byConsent();
    const pidToCustomer = new Map(server.customers.map((c) => [reader.pseudonym(c.id), c.id]));
    const released = rows.map((r) => pidToCustomer.get(String(r.pid)));
    expect(released.every((id) => id !== undefined), 'every pid is a seeded customer').toBe(true);
    expect(new Set(released).size).toBe(released.length);
    for (const id of released) {
      expect(active.has(id!), 'released without an active consent').toBe(true);
      expect(withdrawn.has(id!) && !active.has(id!), 'released after consent was withdrawn').toBe(false);
    }
    expect(withdrawn.size).toBeGreaterThan(0);
    expect(meta.totalCount + meta.suppressed).toBe(active.size);
  });

  it('keeps pseudonyms stable across pulls and unlinkable across datasets', async () => {
    const first = await pullAll('customer_profile', 'u-analyst-1', 37);
    const second = await pullAll('customer_profile', 'u-analyst-1', 100);
    expect(second.rows).toEqual(first.rows);
    const other = await pullAll('regional_segments');
    const profilePids = new Set(first.rows.map((r) => r.pid));
    expect(other.rows.length).toBeGreaterThan(0);
    for (const row of other.rows) expect(profilePids.has(row.pid)).toBe(false);
  });

  it('is refused to every role without a read Dataset rule, before any row is read', async () => {
    for (const principal of ['u-rep-1', 'u-mgr-1', 'u-cs-1', 'u-auditor-1', 'u-dpo-1', 'u-admin-1']) {
      const res = await gql(server, principal, PAGE, { name: 'customer_profile', first: 10 });
      expect(res.json.data).toBeNull();
      expect(res.json.errors[0].extensions.code, principal).toBe('FORBIDDEN');
    }
    const unknown = await gql(server, 'u-analyst-1', PAGE, { name: 'customers', first: 10 });
    expect(unknown.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('refuses a forged cursor, another principal\'s cursor, and a cursor from before the data changed', async () => {
    const page = await gql(server, 'u-analyst-1', PAGE, { name: 'customer_profile', first: 20 });
    const cursor = page.json.data.dataset.pageInfo.endCursor as string;
    const forged = await gql(server, 'u-analyst-1', PAGE, { name: 'customer_profile', first: 20, after: `${cursor.slice(0, -2)}AA` });
    expect(forged.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const other = await gql(server, 'u-analyst-1', PAGE, { name: 'regional_segments', first: 20, after: cursor });
    expect(other.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    // A new quasi-identifier group (a tier nobody else has) changes the release plan.
    const { active } = byConsent();
    const target = [...active][0]!;
    await server.running.db.db.execute(sql`update customers set tier = 'diamond' where id = ${target}::uuid`);
    try {
      const stale = await gql(server, 'u-analyst-1', PAGE, { name: 'customer_profile', first: 20, after: cursor });
      expect(stale.json.errors[0].extensions.code).toBe('CONFLICT');
      expect(stale.json.errors[0].extensions.reason).toBe('DATASET_CHANGED');
      // The lone 'diamond' customer is withheld, not released.
      const { rows } = await pullAll('customer_profile');
      expect(rows.some((r) => r.tier === 'diamond')).toBe(false);
    } finally {
      const original = server.customers.find((c) => c.id === target)!;
      await server.running.db.db.execute(sql`update customers set tier = ${original.tier} where id = ${target}::uuid`);
    }
  });

  it('audits each page: who, which customers, which columns, for which purpose', async () => {
    const res = await gql(server, 'u-analyst-1', PAGE, { name: 'regional_segments', first: 5 });
    expect(res.json.errors).toBeUndefined();
    const rows = await queryRows(
      server.running.db.db,
      sql`select principal_id, action, subject, purpose, reason, record_ids, fields from audit_events where subject = 'Dataset' and reason = 'dataset:regional_segments' order by seq desc limit 1`,
    );
    expect(rows[0]).toMatchObject({ principal_id: 'u-analyst-1', action: 'read', purpose: 'analytics' });
    expect((rows[0]!.record_ids as string[]).length).toBe(5);
    const def = server.running.bundle.datasets.get('regional_segments')!;
    expect((rows[0]!.fields as { masked: string[] }).masked).toEqual(def.columns.map((c) => c.name));
    expect(quasiColumns(def).length).toBe(3);
  });
});
