import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { maskLast4 } from '../src/authz/masks.js';
import { queryRows } from '../src/db/execute.js';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
let base: string;
beforeAll(async () => {
  server = await startTestServer({ customers: 300 });
  base = server.url.replace(/\/graphql$/, '');
});
afterAll(async () => {
  await server?.stop();
});

const REQUEST = `mutation ($input: RequestExportInput!) { requestExport(input: $input) { id state kind rowLimit rowsExported downloadPath } }`;
const APPROVE = `mutation ($id: ID!, $rowLimit: Int) { approveExport(id: $id, expiresInHours: 2, rowLimit: $rowLimit) { id state rowLimit expiresAt downloadPath decidedBy } }`;
const REVOKE = `mutation ($id: ID!) { revokeExport(id: $id, reason: "no longer needed") { id state } }`;
const GRANT = `query ($id: ID!) { exportRequest(id: $id) { id state rowsExported rowLimit } }`;

async function datasetGrant(rowLimit = 100_000, approvedLimit?: number): Promise<string> {
  const asked = await gql(server, 'u-analyst-1', REQUEST, {
    input: { dataset: 'customer_profile', purpose: 'ANALYTICS', rowLimit, reason: 'quarterly churn model refresh' },
  });
  expect(asked.json.errors).toBeUndefined();
  const id = asked.json.data.requestExport.id as string;
  const approved = await gql(server, 'u-dpo-1', APPROVE, { id, rowLimit: approvedLimit ?? null });
  expect(approved.json.errors, JSON.stringify(approved.json.errors)).toBeUndefined();
  expect(approved.json.data.approveExport).toMatchObject({ state: 'APPROVED', decidedBy: 'u-dpo-1', downloadPath: `/exports/${id}/rows` });
  return id;
}

async function pull(principal: string, id: string, params: Record<string, string> = {}) {
  const token = await server.token(principal);
  const url = new URL(`${base}/exports/${id}/rows`);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  const res = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, json: res.headers.get('content-type')?.includes('application/json') ? JSON.parse(text) : undefined };
}

const ndjson = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

async function allDatasetRows(): Promise<Array<Record<string, unknown>>> {
  const rows: Array<Record<string, unknown>> = [];
  let after: string | null = null;
  for (;;) {
    const res = await gql(server, 'u-analyst-1', `query ($after: String) { dataset(name: "customer_profile", first: 100, after: $after) { nodes { values } pageInfo { hasNextPage endCursor } } }`, { after });
    rows.push(...res.json.data.dataset.nodes.map((n: { values: Record<string, unknown> }) => n.values));
    if (!res.json.data.dataset.pageInfo.hasNextPage) return rows;
    after = res.json.data.dataset.pageInfo.endCursor;
  }
}

describe('export approval queue', () => {
  it('grants nothing until approved, and never to the requester approving their own request', async () => {
    const asked = await gql(server, 'u-mgr-1', REQUEST, {
      input: { customers: { filter: { tier: 'gold' }, fields: ['name', 'city', 'tier'] }, purpose: 'CONTACT', rowLimit: 50, reason: 'gold customer event invitations' },
    });
    expect(asked.json.errors).toBeUndefined();
    const id = asked.json.data.requestExport.id as string;
    expect(asked.json.data.requestExport).toMatchObject({ state: 'PENDING', downloadPath: null, rowsExported: 0 });
    const pending = await pull('u-mgr-1', id);
    expect(pending.status).toBe(403);
    expect(pending.json.errors[0].extensions.reason).toBe('GRANT_PENDING');
    const self = await gql(server, 'u-mgr-1', APPROVE, { id });
    expect(self.json.errors[0].extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'SELF_APPROVAL' });
    // Approvers of other kinds or departments cannot decide it either.
    const dpo = await gql(server, 'u-dpo-1', APPROVE, { id });
    expect(dpo.json.errors[0].extensions.code).toBe('FORBIDDEN');
    const rep = await gql(server, 'u-rep-1', APPROVE, { id });
    expect(['FORBIDDEN', 'BAD_USER_INPUT']).toContain(rep.json.errors[0].extensions.code);
    const state = await gql(server, 'u-mgr-1', GRANT, { id });
    expect(state.json.data.exportRequest.state).toBe('PENDING');
  });

  it('refuses requests a role may not make, and filters that would keep a personal value in the queue', async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['u-analyst-1', { customers: { fields: ['tier'] }, purpose: 'ANALYTICS', rowLimit: 10, reason: 'I would like the customer list' }, 'FORBIDDEN'],
      ['u-mgr-1', { dataset: 'customer_profile', purpose: 'ANALYTICS', rowLimit: 10, reason: 'a dataset for the department' }, 'FORBIDDEN'],
      ['u-rep-1', { customers: { fields: ['name', 'idNumber'] }, purpose: 'CONTACT', rowLimit: 10, reason: 'identity numbers for checks' }, 'FORBIDDEN'],
      ['u-rep-1', { customers: { filter: { phone: '13800138000' }, fields: ['name'] }, purpose: 'CONTACT', rowLimit: 10, reason: 'one customer by phone number' }, 'BAD_USER_INPUT'],
      ['u-rep-1', { customers: { fields: ['name'] }, purpose: 'CONTACT', rowLimit: 0, reason: 'zero rows for a test' }, 'BAD_USER_INPUT'],
      ['u-rep-1', { customers: { fields: ['name'] }, purpose: 'CONTACT', rowLimit: 10, reason: 'short' }, 'BAD_USER_INPUT'],
      ['u-rep-1', { customers: { fields: ['name'] }, dataset: 'customer_profile', purpose: 'CONTACT', rowLimit: 10, reason: 'both kinds at once please' }, 'BAD_USER_INPUT'],
      ['u-analyst-1', { dataset: 'customer_profile', purpose: 'FRAUD', rowLimit: 10, reason: 'wrong purpose for the dataset' }, 'BAD_USER_INPUT'],
      ['u-auditor-1', { dataset: 'customer_profile', purpose: 'ANALYTICS', rowLimit: 10, reason: 'auditors do not export data' }, 'FORBIDDEN'],
    ];
    for (const [principal, input, code] of cases) {
      const res = await gql(server, principal, REQUEST, { input });
      expect(res.json.errors?.[0]?.extensions?.code, `${principal} ${JSON.stringify(input)}`).toBe(code);
      expect(res.text).not.toContain('13800138000');
    }
  });

  it('streams an approved dataset export whole: the same rows as the dataset, counted and audited', async () => {
    const id = await datasetGrant();
    const res = await pull('u-analyst-1', id);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/x-ndjson');
    const rows = ndjson(res.text);
    const expected = await allDatasetRows();
    expect(rows).toEqual(expected);
    const state = await gql(server, 'u-analyst-1', GRANT, { id });
    expect(state.json.data.exportRequest.rowsExported).toBe(rows.length);
    const audit = await queryRows(server.running.db.db, sql`select action, subject, principal_id, purpose, record_ids from audit_events where reason = ${`grant:${id}`} order by seq`);
    expect(audit.length).toBeGreaterThan(0);
    expect(audit.every((a) => a.action === 'export' && a.subject === 'Dataset' && a.principal_id === 'u-analyst-1' && a.purpose === 'analytics')).toBe(true);
    expect(audit.reduce((n, a) => n + (a.record_ids as string[]).length, 0)).toBe(rows.length);
  });

  it('pages with a resume cursor, stops at the cap, and refuses beyond it', async () => {
    const id = await datasetGrant(100_000, 30);
    const first = await pull('u-analyst-1', id, { limit: '20' });
    expect(first.status).toBe(200);
    expect(first.headers.get('x-export-rows')).toBe('20');
    expect(first.headers.get('x-export-remaining')).toBe('10');
    const next = first.headers.get('x-export-next');
    expect(next).toBeTruthy();
    const second = await pull('u-analyst-1', id, { limit: '20', after: next! });
    expect(second.headers.get('x-export-rows')).toBe('10');
    expect(second.headers.get('x-export-remaining')).toBe('0');
    expect(second.headers.get('x-export-complete')).toBe('false');
    const rows = [...ndjson(first.text), ...ndjson(second.text)];
    expect(rows).toEqual((await allDatasetRows()).slice(0, 30));
    const beyond = await pull('u-analyst-1', id, { limit: '20', after: second.headers.get('x-export-next')! });
    expect(beyond.status).toBe(403);
    expect(beyond.json.errors[0].extensions.reason).toBe('GRANT_EXHAUSTED');
    const tampered = await pull('u-analyst-1', await datasetGrant(), { limit: '20', after: next! });
    expect(tampered.status).toBe(400);
  });

  it('refuses expired and revoked grants, other principals and anonymous callers', async () => {
    const expired = await datasetGrant();
    await server.running.db.db.execute(sql`update export_requests set expires_at = now() - interval '1 minute' where id = ${expired}::uuid`);
    const late = await pull('u-analyst-1', expired);
    expect(late.status).toBe(403);
    expect(late.json.errors[0].extensions.reason).toBe('GRANT_EXPIRED');

    const revoked = await datasetGrant();
    const r = await gql(server, 'u-dpo-1', REVOKE, { id: revoked });
    expect(r.json.data.revokeExport.state).toBe('REVOKED');
    const gone = await pull('u-analyst-1', revoked);
    expect(gone.status).toBe(403);
    expect(gone.json.errors[0].extensions.reason).toBe('GRANT_REVOKED');

    const live = await datasetGrant();
    for (const principal of ['u-dpo-1', 'u-mgr-1', 'u-rep-1', 'u-auditor-1']) {
      const res = await pull(principal, live);
      expect([403, 404], principal).toContain(res.status);
      expect(res.text).not.toContain('"pid"');
    }
    const anonymous = await fetch(`${base}/exports/${live}/rows`);
    expect(anonymous.status).toBe(401);
    const state = await gql(server, 'u-analyst-1', GRANT, { id: live });
    expect(state.json.data.exportRequest.rowsExported).toBe(0);
  });

  it('exports an identified list as the holder reads it: own rows only, contact data masked, as CSV', async () => {
    const asked = await gql(server, 'u-rep-1', REQUEST, {
      input: { customers: { fields: ['id', 'name', 'phone', 'city', 'tier'] }, purpose: 'CONTACT', rowLimit: 1000, reason: 'follow-up calls for my accounts' },
    });
    const id = asked.json.data.requestExport.id as string;
    // Another department's manager cannot see the request; the own manager approves it.
    const other = await gql(server, 'u-rep-3', GRANT, { id });
    expect(other.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
    const approved = await gql(server, 'u-mgr-1', APPROVE, { id });
    expect(approved.json.data.approveExport.state).toBe('APPROVED');
    const res = await pull('u-rep-1', id, { format: 'csv' });
    expect(res.status).toBe(200);
    const lines = res.text.trim().split('\r\n');
    expect(lines[0]).toBe('id,name,phone,city,tier');
    const own = server.customers.filter((c) => c.ownerId === 'u-rep-1');
    expect(lines.length - 1).toBe(own.length);
    for (const line of lines.slice(1)) {
      const [cid, , phone] = line.split(',');
      const customer = own.find((c) => c.id === cid);
      expect(customer, 'a row of a customer the rep does not own').toBeDefined();
      if (customer!.phone) expect(phone).toBe(maskLast4(customer!.phone));
    }
    for (const c of server.customers) {
      if (c.phone) expect(res.text).not.toContain(c.phone);
      if (c.email) expect(res.text).not.toContain(c.email);
    }
    const audit = await queryRows(server.running.db.db, sql`select subject, action, fields from audit_events where reason = ${`grant:${id}`}`);
    expect(audit[0]).toMatchObject({ subject: 'Customer', action: 'export' });
    expect((audit[0]!.fields as { masked: string[] }).masked).toContain('phone');
  });

  it('lists requests by who may see them', async () => {
    const list = `{ exportRequests(first: 50) { nodes { id kind requestedBy } } }`;
    const mgr = await gql(server, 'u-mgr-1', list);
    expect(mgr.json.data.exportRequests.nodes.every((n: { kind: string }) => n.kind === 'CUSTOMERS')).toBe(true);
    const analyst = await gql(server, 'u-analyst-1', list);
    expect(analyst.json.data.exportRequests.nodes.every((n: { requestedBy: string }) => n.requestedBy === 'u-analyst-1')).toBe(true);
    const dpo = await gql(server, 'u-dpo-1', list);
    expect(dpo.json.data.exportRequests.nodes.length).toBeGreaterThan(analyst.json.data.exportRequests.nodes.length);
    const admin = await gql(server, 'u-admin-1', list);
    expect(admin.json.errors[0].extensions.code).toBe('FORBIDDEN');
  });
});
