import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../db/client.js';
import { accessSummary, findEvents, trailOf } from './queries.js';
import type { AuditEventInput } from './record.js';
import { AuditLog } from './store.js';
import { asOwner, auditEvent, openTestDb, type TestDb } from './test-db.js';

let testDb: TestDb;
let db: Db;
let before: Date;
let after: Date;

const none = { raw: [], masked: [], revealed: [], denied: [] };

/** seq 1..7, in this order. */
const story: Array<Partial<AuditEventInput>> = [
  { traceId: 't-1', principalId: 'u-rep-1', recordIds: ['c-1', 'c-2'] },
  { traceId: 't-1', principalId: 'u-rep-1', action: 'reveal', recordIds: ['c-1'], purpose: 'contact', fields: { ...none, revealed: ['phone'] } },
  { traceId: 't-2', principalId: 'u-rep-1', recordIds: ['c-2', 'c-3'] },
  { traceId: 't-3', principalId: 'u-rep-3', recordIds: [], decision: 'deny', reason: 'no-rule' },
  { traceId: 't-4', principalId: 'u-dpo-1', roles: ['dpo'], recordIds: ['c-3'], purpose: 'dsr', fields: { ...none, revealed: ['id_number'] } },
  { traceId: 't-5', principalId: 'u-rep-3', action: 'reveal', recordIds: ['c-1'], decision: 'deny', purpose: 'contact' },
  { traceId: null, principalId: 'u-auditor-1', roles: ['auditor'], action: 'audit_read', subject: 'AuditEvent', recordIds: [] },
];

beforeAll(async () => {
  testDb = await openTestDb();
  db = testDb.handle.db;
  await asOwner(db, sql`delete from audit_events`);
  before = new Date(Date.now() - 60_000);
  const log = new AuditLog(db);
  for (const event of story) await log.append([auditEvent(event)]);
  after = new Date(Date.now() + 60_000);
});

afterAll(async () => {
  await testDb?.close();
});

const seqs = (records: Array<{ seq: number }>) => records.map((r) => r.seq);

describe(trailOf.name, () => {
  it('returns every record of one trace in chain order', async () => {
    expect(seqs(await trailOf(db, 't-1'))).toEqual([1, 2]);
    expect(await trailOf(db, 't-unknown')).toEqual([]);
  });
});

describe(findEvents.name, () => {
  it.each<[string, Parameters<typeof findEvents>[1], number[]]>([
    ['no filter', {}, [7, 6, 5, 4, 3, 2, 1]],
    ['a principal', { principalId: 'u-rep-3' }, [6, 4]],
    ['a customer (who accessed c-1)', { customerId: 'c-1' }, [6, 2, 1]],
    ['an action', { action: 'audit_read' }, [7]],
    ['reveals: reveal records and the reads that revealed raw values', { action: 'reveal' }, [6, 5, 2]],
    ['a decision', { decision: 'deny' }, [6, 4]],
    ['a customer and a decision', { customerId: 'c-1', decision: 'allow' }, [2, 1]],
  ])('filters by %s, newest first', async (_what, filter, expected) => {
    const { records, hasNextPage } = await findEvents(db, filter, { first: 50 });
    expect(seqs(records)).toEqual(expected);
    expect(hasNextPage).toBe(false);
  });

  it('filters by time: from inclusive, to exclusive', async () => {
    const [newest] = await trailOf(db, 't-5');
    expect((await findEvents(db, { from: before, to: after }, { first: 50 })).records).toHaveLength(7);
    expect(seqs((await findEvents(db, { from: newest!.at, to: after }, { first: 50 })).records)).toContain(6);
    expect(seqs((await findEvents(db, { from: before, to: newest!.at }, { first: 50 })).records)).not.toContain(6);
    expect((await findEvents(db, { from: after }, { first: 50 })).records).toEqual([]);
  });

  it('pages by seq with afterSeq and tells whether more remain', async () => {
    const first = await findEvents(db, {}, { first: 3 });
    expect([seqs(first.records), first.hasNextPage]).toEqual([[7, 6, 5], true]);
    const second = await findEvents(db, {}, { first: 3, afterSeq: 5 });
    expect([seqs(second.records), second.hasNextPage]).toEqual([[4, 3, 2], true]);
    const last = await findEvents(db, {}, { first: 3, afterSeq: 2 });
    expect([seqs(last.records), last.hasNextPage]).toEqual([[1], false]);
  });

  it('refuses a page size that is not a positive integer', async () => {
    await expect(findEvents(db, {}, { first: 0 })).rejects.toBeInstanceOf(RangeError);
  });
});

describe(accessSummary.name, () => {
  it('counts reads, distinct records, reveals and denials per principal, and reveals per purpose', async () => {
    expect(await accessSummary(db, before, after)).toEqual({
      byPrincipal: [
        { principalId: 'u-auditor-1', reads: 0, records: 0, reveals: 0, denials: 0 },
        { principalId: 'u-dpo-1', reads: 1, records: 1, reveals: 1, denials: 0 },
        { principalId: 'u-rep-1', reads: 2, records: 3, reveals: 1, denials: 0 },
        { principalId: 'u-rep-3', reads: 0, records: 0, reveals: 0, denials: 2 },
      ],
      revealsByPurpose: [
        { purpose: 'contact', count: 1 },
        { purpose: 'dsr', count: 1 },
      ],
      denials: 2,
    });
  });

  it('is empty outside the window', async () => {
    expect(await accessSummary(db, after, new Date(after.getTime() + 1000))).toEqual({
      byPrincipal: [],
      revealsByPurpose: [],
      denials: 0,
    });
  });
});
