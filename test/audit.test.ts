import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { verifyChain } from '../src/audit/verify.js';
import { Attr, SpanName } from '../src/telemetry/names.js';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

const spans = new InMemorySpanExporter();
const logLines: string[] = [];
let server: TestServer;
beforeAll(async () => {
  server = await startTestServer({ customers: 60, spanExporter: spans, logLines });
});
afterAll(async () => {
  await server?.stop();
});

const TRAIL = `query($t: String!) { auditTrail(traceId: $t) { seq principalId roles action subject recordIds purpose decision policyVersion fields { raw masked revealed denied } } }`;

/** Every raw personal value the seed produced: none may appear in a span, a log line or an audit record. */
function sentinels(): string[] {
  return server.customers.flatMap((c) => [c.phone, c.email, c.idNumber, c.address, c.birthDate, c.name]).filter((v): v is string => !!v);
}

/** Requests whose audit commit wait `custos_audit_commit_wait_seconds` observed, by outcome (0 before the first). */
async function auditWaits(outcome: 'committed' | 'failed'): Promise<number> {
  const text = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
  return Number(new RegExp(`^custos_audit_commit_wait_seconds_count\\{outcome="${outcome}"\\} (\\d+)$`, 'm').exec(text)?.[1] ?? 0);
}

describe('a request by u-rep-1 can be followed by an auditor', () => {
  it('lists the customers and fields touched, masked vs revealed, the purpose and the policy version', async () => {
    const res = await gql(server, 'u-rep-1', `{ customers(first: 5) { edges { node { id name email phone(purpose: CONTACT) } } } }`);
    const traceId: string = res.json.extensions.traceId;
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const ids = res.json.data.customers.edges.map((e: { node: { id: string } }) => e.node.id);

    const trail = await gql(server, 'u-auditor-1', TRAIL, { t: traceId });
    const records = trail.json.data.auditTrail;
    const read = records.find((r: { action: string }) => r.action === 'read');
    expect(read).toMatchObject({ principalId: 'u-rep-1', subject: 'Customer', recordIds: ids, decision: 'allow', policyVersion: server.running.bundle.version });
    expect(read.fields.masked).toEqual(['email']);
    // A rep's own customers' names are revealed without a purpose (policy: reveal name, no purpose).
    expect(read.fields.raw).toEqual(['id']);
    expect(read.fields.revealed).toEqual(['name', 'phone']);
    const reveal = records.find((r: { action: string; purpose: string | null }) => r.action === 'reveal' && r.purpose === 'contact');
    expect(reveal).toMatchObject({ purpose: 'contact', recordIds: ids, fields: { revealed: ['phone'] } });
    // The names' reveal without a purpose covers every row: the read (no purpose) says it, with no record of its own.
    expect(records.map((r: { action: string; purpose: string | null }) => [r.action, r.purpose])).toEqual([
      ['read', null],
      ['reveal', 'contact'],
    ]);
  });

  it('carries the same decisions on the spans, with no personal value in any span', async () => {
    spans.reset();
    const res = await gql(server, 'u-rep-1', `{ customers(first: 3) { edges { node { id email phone(purpose: CONTACT) } } } }`);
    const traceId = res.json.extensions.traceId;
    const mine = spans.getFinishedSpans().filter((s) => s.spanContext().traceId === traceId);
    const names = mine.map((s) => s.name);
    // Operation, enforcement, its SELECT. The principal lookup and the audit append are noted on the operation span.
    expect(names.sort()).toEqual([SpanName.sql, SpanName.enforce, SpanName.operation].sort());
    const enforce = mine.find((s) => s.name === SpanName.enforce)!;
    expect(enforce.attributes[Attr.fieldsRevealed]).toEqual(['phone']);
    expect(enforce.attributes[Attr.fieldsMasked]).toEqual(['email']);
    expect(enforce.attributes[Attr.recordIds]).toEqual(res.json.data.customers.edges.map((e: { node: { id: string } }) => e.node.id));
    const op = mine.find((s) => s.name === SpanName.operation)!;
    // Its one reveal (phone, for contact) covers every row: the read's record says it, no second record.
    expect(op.attributes[Attr.auditRecords]).toBe(1);
    expect(op.attributes[Attr.auditCommitMs]).toBeGreaterThanOrEqual(0);
    // The group's write is part of the request's wait for it.
    expect(op.attributes[Attr.auditFlushMs]).toBeGreaterThan(0);
    expect(op.attributes[Attr.auditFlushMs]).toBeLessThanOrEqual(op.attributes[Attr.auditCommitMs] as number);
    expect(op.attributes[Attr.principal]).not.toBe('u-rep-1');
    expect(op.attributes[Attr.purposes]).toEqual(['contact']);
    expect(op.attributes[Attr.policyVersion]).toBe(server.running.bundle.version);
    expect(op.attributes[Attr.roles]).toEqual(['sales_rep']);
    expect(enforce.attributes[Attr.purposes]).toEqual(['contact']);
    const dumped = JSON.stringify(spans.getFinishedSpans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events })));
    for (const value of sentinels()) expect(dumped.includes(value), 'a personal value reached a span').toBe(false);
    const trail = await gql(server, 'u-auditor-1', TRAIL, { t: traceId });
    expect(trail.json.data.auditTrail).toMatchObject([{ action: 'read', purpose: 'contact', recordIds: enforce.attributes[Attr.recordIds], fields: { masked: ['email'], revealed: ['phone'] } }]);
    const reveals = await gql(server, 'u-auditor-1', `{ auditEvents(filter: { principalId: "u-rep-1", action: "reveal" }, first: 1) { edges { node { action purpose } } } }`);
    expect(reveals.json.data.auditEvents.edges[0].node).toEqual({ action: 'read', purpose: 'contact' });
  });

  it('keeps personal values out of spans even when a caller sends them as arguments', async () => {
    spans.reset();
    const victim = server.customers[3]!;
    await gql(server, 'u-cs-1', `{ customers(filter: { phone: "${victim.phone}" }) { edges { node { id } } } }`);
    await gql(server, 'u-rep-1', `{ customers(filter: { phone: "${victim.phone}", name: "${victim.name}" }) { totalCount } }`);
    const dumped = JSON.stringify(spans.getFinishedSpans().map((s) => s.attributes));
    expect(dumped.includes(victim.phone!)).toBe(false);
    expect(dumped.includes(victim.name)).toBe(false);
  });

  it('continues an incoming W3C trace', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const token = await server.token('u-rep-1');
    const res = await server.post({ query: '{ me { id } }' }, { authorization: `Bearer ${token}`, traceparent: `00-${traceId}-00f067aa0ba902b7-01` });
    expect(res.json.extensions.traceId).toBe(traceId);
  });
});

describe('the audit trail', () => {
  it('records denials and the auditor’s own reads', async () => {
    await gql(server, 'u-rep-1', '{ customers(first: 1) { edges { node { idNumber } } } }');
    const denied = await gql(server, 'u-auditor-1', `{ auditEvents(filter: { principalId: "u-rep-1", decision: "deny" }, first: 5) { edges { node { action fields { denied } } } } }`);
    expect(denied.json.data.auditEvents.edges[0].node).toEqual({ action: 'deny', fields: { denied: ['idNumber'] } });
    const reads = await gql(server, 'u-auditor-1', `{ auditEvents(filter: { principalId: "u-auditor-1", action: "audit_read" }, first: 1) { edges { node { subject } } } }`);
    expect(reads.json.data.auditEvents.edges.length).toBe(1);
  });

  it('answers who accessed a customer, and is closed to every other role', async () => {
    const target = server.customers.find((c) => c.ownerId === 'u-rep-1')!;
    await gql(server, 'u-rep-1', `query($id: ID!) { customer(id: $id) { id } }`, { id: target.id });
    const who = await gql(server, 'u-auditor-1', `query($c: String) { auditEvents(filter: { customerId: $c }) { edges { node { principalId action } } } }`, { c: target.id });
    expect(who.json.data.auditEvents.edges.map((e: { node: { principalId: string } }) => e.node.principalId)).toContain('u-rep-1');
    for (const principal of ['u-rep-1', 'u-mgr-1', 'u-cs-1', 'u-dpo-1', 'u-admin-1', 'u-analyst-1']) {
      const res = await gql(server, principal, `{ auditEvents { edges { node { seq } } } }`);
      expect(res.json.errors[0].extensions.code).toBe('FORBIDDEN');
    }
  });

  it('pages by any edge cursor and by endCursor, newest first, each record once', async () => {
    const page = `query($f: AuditEventFilter, $n: Int!, $a: String) { auditEvents(filter: $f, first: $n, after: $a) { edges { cursor node { seq } } pageInfo { endCursor hasNextPage } } }`;
    const filter = { principalId: 'u-rep-1' };
    const all = await gql(server, 'u-auditor-1', page, { f: filter, n: 50 });
    const seqs: number[] = all.json.data.auditEvents.edges.map((e: { node: { seq: number } }) => e.node.seq);
    expect(seqs.length).toBeGreaterThanOrEqual(4);
    expect([...seqs].sort((a, b) => b - a)).toEqual(seqs);
    // After the cursor of the k-th edge come exactly the records after it.
    for (const k of [0, 1, seqs.length - 2]) {
      const after = await gql(server, 'u-auditor-1', page, { f: filter, n: 50, a: all.json.data.auditEvents.edges[k].cursor });
      expect(after.json.data.auditEvents.edges.map((e: { node: { seq: number } }) => e.node.seq)).toEqual(seqs.slice(k + 1));
    }
    // Walking two at a time by endCursor visits them all, in order.
    const walked: number[] = [];
    let cursor: string | null = null;
    for (let hasNext = true; hasNext; ) {
      const res = await gql(server, 'u-auditor-1', page, { f: filter, n: 2, ...(cursor ? { a: cursor } : {}) });
      const conn = res.json.data.auditEvents;
      walked.push(...conn.edges.map((e: { node: { seq: number } }) => e.node.seq));
      expect(conn.pageInfo.endCursor).toEqual(conn.edges.length > 0 ? expect.any(String) : null);
      ({ endCursor: cursor, hasNextPage: hasNext } = conn.pageInfo);
    }
    // The walk's own audit_read records are the auditor's, not u-rep-1's: the filtered trail did not move.
    expect(walked).toEqual(seqs);
    // A cursor is bound to its filter: under another one it is refused.
    const other = await gql(server, 'u-auditor-1', page, { f: { principalId: 'u-mgr-1' }, n: 5, a: all.json.data.auditEvents.edges[0].cursor });
    expect(other.json.errors[0].extensions.code).toBe('BAD_USER_INPUT');
  });

  it('holds no personal value, and its chain verifies', async () => {
    const rows = await server.running.db.db.execute(sql`select * from audit_events`);
    const dumped = JSON.stringify(rows);
    for (const value of sentinels()) expect(dumped.includes(value)).toBe(false);
    const result = await verifyChain(server.running.db.db);
    expect(result.ok).toBe(true);
  });

  it('fails closed: no audit record, no customer data', async () => {
    const failedWaits = await auditWaits('failed');
    await server.running.db.db.execute(sql`alter table audit_events rename to audit_events_offline`);
    try {
      const res = await gql(server, 'u-rep-1', `{ customers(first: 5) { edges { node { id name phone(purpose: CONTACT) } } } }`);
      expect(res.status).toBe(503);
      expect(res.json.data).toBeUndefined();
      expect(res.json.errors[0].extensions.code).toBe('SERVICE_UNAVAILABLE');
      for (const value of sentinels()) expect(res.text.includes(value)).toBe(false);
    } finally {
      await server.running.db.db.execute(sql`alter table audit_events_offline rename to audit_events`);
    }
    // The refused request's wait is in the histogram, as a failure.
    expect(await auditWaits('failed')).toBe(failedWaits + 1);
    const after = await gql(server, 'u-rep-1', `{ customers(first: 1) { edges { node { id } } } }`);
    expect(after.status).toBe(200);
  });

  it('counts a request in flight while it waits for its audit commit, and none once it is answered', async () => {
    const inFlight = async () => {
      const text = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
      return Number(/^custos_graphql_requests_in_flight (\S+)$/m.exec(text)?.[1]);
    };
    expect(await inFlight()).toBe(0);
    const audit = server.running.audit!;
    const append = audit.append.bind(audit);
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let appended!: () => void;
    const reached = new Promise<void>((resolve) => (appended = resolve));
    // The request's records are committed only once the test lets them through.
    const spy = vi.spyOn(audit, 'append').mockImplementationOnce(async (events) => {
      appended();
      await held;
      return append(events);
    });
    try {
      const pending = gql(server, 'u-rep-1', `{ customers(first: 1) { edges { node { id } } } }`);
      await reached;
      expect(await inFlight()).toBe(1);
      release();
      expect((await pending).status).toBe(200);
      expect(await inFlight()).toBe(0);
    } finally {
      release();
      spy.mockRestore();
    }
  });

  it('exposes metrics with bounded labels and no personal value or id', async () => {
    const text = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
    expect(text).toMatch(/custos_graphql_requests_total\{operation="query",outcome="ok"\} \d+/);
    expect(text).toMatch(/custos_enforcement_decisions_total\{subject="Customer",action="reveal",decision="allow"\} \d+/);
    expect(text).toMatch(/custos_db_statements_total \d+/);
    expect(text).not.toMatch(/u-rep-1|u-auditor-1/);
    for (const value of sentinels()) expect(text.includes(value)).toBe(false);
    for (const c of server.customers) expect(text.includes(c.id)).toBe(false);
  });

  it('counts audit commits and records, and merges the record ids of committed reads into their index in the background', async () => {
    const metric = async (name: string) => {
      const text = await (await fetch(server.url.replace('/graphql', '/metrics'))).text();
      return Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(text)?.[1]);
    };
    const [records, commits, waits] = [await metric('custos_audit_records_total'), await metric('custos_audit_commits_total'), await auditWaits('committed')];
    await gql(server, 'u-rep-1', `{ customers(first: 5) { edges { node { id } } } }`);
    // The read's strict audit committed before the reply: one record (one policed read), one transaction, one wait.
    expect(await metric('custos_audit_records_total')).toBe(records + 1);
    expect(await metric('custos_audit_commits_total')).toBe(commits + 1);
    expect(await auditWaits('committed')).toBe(waits + 1);
    // Requests that read nothing audited wait for nothing.
    await gql(server, 'u-rep-1', `{ __typename }`);
    expect(await auditWaits('committed')).toBe(waits + 1);
    await vi.waitFor(async () => expect(await metric('custos_audit_index_merges_total')).toBeGreaterThan(0), { timeout: 5000, interval: 50 });
    expect(await metric('custos_audit_index_merge_failures_total')).toBe(0);
    expect(await metric('custos_audit_index_merges_skipped_total')).toBe(0);
  });

  it('writes no personal value into the logs', () => {
    const dumped = logLines.join('\n');
    expect(logLines.length).toBeGreaterThan(0);
    for (const value of sentinels()) expect(dumped.includes(value)).toBe(false);
  });
});
