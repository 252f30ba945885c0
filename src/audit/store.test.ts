import { sql } from 'drizzle-orm';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDb, type Db } from '../db/client.js';
import { queryRows } from '../db/execute.js';
import { trailOf } from './queries.js';
import { type AuditEventInput, GENESIS_HASH, hashRecord } from './record.js';
import { AuditLog, AuditStoreError, CHAIN_LOCK_KEY, INDEX_MERGE_LOCK_KEY, type AuditLogOptions } from './store.js';
import { asOwner, auditEvent, openTestDb, type TestDb } from './test-db.js';
import { verifyChain } from './verify.js';

let testDb: TestDb;
let db: Db;

beforeAll(async () => {
  testDb = await openTestDb();
  db = testDb.handle.db;
});

afterAll(async () => {
  await testDb?.close();
});

beforeEach(async () => {
  await asOwner(db, sql`delete from audit_events`);
});

/** Every log a test opens, closed after it: no test's delayed index merge runs during the next one. */
const opened: AuditLog[] = [];
function openLog(on: Db, opts?: AuditLogOptions): AuditLog {
  const log = new AuditLog(on, opts);
  opened.push(log);
  return log;
}

afterEach(async () => {
  await Promise.all(opened.splice(0).map((log) => log.close()));
});

async function storedSeqs(): Promise<number[]> {
  const rows = await queryRows(db, sql`select seq::int as seq from audit_events order by seq`);
  return rows.map((r) => r.seq as number);
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe(AuditLog.name, () => {
  it('chains records from the genesis hash, seq from 1, each hash over the previous one', async () => {
    const log = openLog(db);
    const first = await log.append([auditEvent(), auditEvent({ action: 'reveal', purpose: 'contact' })]);
    const [third] = await log.append([auditEvent({ decision: 'deny', reason: 'no-rule' })]);
    const records = [...first, third!];
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(records[0]!.prevHash).toEqual(GENESIS_HASH);
    for (const [i, r] of records.entries()) {
      if (i > 0) expect(r.prevHash).toEqual(records[i - 1]!.hash);
      expect(r.hash).toEqual(hashRecord(r.prevHash, r));
    }
    expect(await trailOf(db, auditEvent().traceId!)).toEqual(records);
    expect(await verifyChain(db)).toEqual({ ok: true, count: 3, lastSeq: 3 });
  });

  it('links each later flush to the head it committed, taking the chain lock only for the first', async () => {
    const log = openLog(db);
    for (const i of range(5)) await log.append([auditEvent({ recordIds: [`c-${i}`] })]);
    expect(log.stats()).toMatchObject({ appended: 5, batches: 5, locked: 1, failures: 0 });
    expect(await verifyChain(db)).toEqual({ ok: true, count: 5, lastSeq: 5 });
  });

  it('goes the locked way when another appender extended the chain since, and still keeps one chain', async () => {
    const second = (await testDb.reopen?.()) ?? testDb.handle;
    try {
      const mine = openLog(db);
      const theirs = openLog(second.db);
      await mine.append([auditEvent()]);
      await theirs.append([auditEvent(), auditEvent()]);
      const [record] = await mine.append([auditEvent()]);
      expect(record!.seq).toBe(4);
      expect(mine.stats()).toMatchObject({ appended: 2, locked: 2, failures: 0 });
      expect(await storedSeqs()).toEqual(range(4));
      expect(await verifyChain(db)).toEqual({ ok: true, count: 4, lastSeq: 4 });
    } finally {
      if (second !== testDb.handle) await second.close();
    }
  });

  it('stores and chains the event as it was when appended, whatever the caller changes afterwards', async () => {
    const log = openLog(db);
    const event = auditEvent({ recordIds: ['c-1', 'c-2'] });
    const appended = log.append([event]);
    event.recordIds.push('c-3');
    event.fields.raw.push('phone');
    await appended;
    const rows = await queryRows(db, sql`select record_ids, fields from audit_events`);
    expect(rows).toEqual([{ record_ids: ['c-1', 'c-2'], fields: auditEvent().fields }]);
    expect(await verifyChain(db)).toEqual({ ok: true, count: 1, lastSeq: 1 });
  });

  it('starts again from the stored head when the one it remembers is gone', async () => {
    const log = openLog(db);
    await log.append([auditEvent(), auditEvent()]);
    await asOwner(db, sql`delete from audit_events`);
    const [record] = await log.append([auditEvent()]);
    expect(record).toMatchObject({ seq: 1, prevHash: GENESIS_HASH });
    expect(await verifyChain(db)).toEqual({ ok: true, count: 1, lastSeq: 1 });
  });

  it('never dates a record before the one it follows, whatever the writer\'s clock says', async () => {
    const log = openLog(db);
    const [first] = await log.append([auditEvent()]);
    const clock = vi.spyOn(Date, 'now').mockReturnValue(first!.at.getTime() - 3_600_000);
    try {
      const [second] = await log.append([auditEvent()]);
      expect(second!.at.getTime()).toBe(first!.at.getTime());
    } finally {
      clock.mockRestore();
    }
    const stored = await queryRows(db, sql`select (extract(epoch from at) * 1000)::float8 as ms from audit_events order by seq`);
    expect(stored.map((r) => r.ms)).toEqual([first!.at.getTime(), first!.at.getTime()]);
    expect(await verifyChain(db)).toMatchObject({ ok: true, count: 2 });
  });

  it('resolves only once the records are committed and readable by others', async () => {
    const other = (await testDb.reopen?.()) ?? testDb.handle;
    try {
      const log = openLog(db);
      const records = await log.append([auditEvent(), auditEvent()]);
      const rows = await queryRows(other.db, sql`select count(*)::int as n from audit_events`);
      expect(rows[0]!.n).toBe(records.length);
    } finally {
      if (other !== testDb.handle) await other.close();
    }
  });

  it('writes 200 concurrent appends as a contiguous, valid chain in far fewer transactions', async () => {
    const log = openLog(db);
    const results = await Promise.all(range(200).map((i) => log.append([auditEvent({ recordIds: [`c-${i}`] })])));
    expect(results.flat().map((r) => r.seq).sort((a, b) => a - b)).toEqual(range(200));
    expect(await storedSeqs()).toEqual(range(200));
    expect(await verifyChain(db, { batch: 64 })).toEqual({ ok: true, count: 200, lastSeq: 200 });
    const stats = log.stats();
    expect(stats).toMatchObject({ appended: 200, queued: 0, failures: 0 });
    expect(stats.batches).toBeLessThan(20);
  });

  it('keeps one chain when several appenders (replicas) write at once', async () => {
    const second = (await testDb.reopen?.()) ?? testDb.handle;
    try {
      const logs = [openLog(db), openLog(second.db), openLog(db)];
      await Promise.all(range(150).map((i) => logs[i % 3]!.append([auditEvent(), auditEvent()])));
      expect(await storedSeqs()).toEqual(range(300));
      expect(await verifyChain(db)).toEqual({ ok: true, count: 300, lastSeq: 300 });
    } finally {
      if (second !== testDb.handle) await second.close();
    }
  });

  it('caps a transaction at maxBatch events but never splits one append call', async () => {
    const log = openLog(db, { maxBatch: 4 });
    await Promise.all([log.append(range(3).map(() => auditEvent())), log.append(range(6).map(() => auditEvent()))]);
    await Promise.all(range(8).map(() => log.append([auditEvent()])));
    expect(log.stats()).toMatchObject({ appended: 17, batches: 4 });
    expect(await verifyChain(db)).toMatchObject({ ok: true, count: 17 });
  });

  it("tells each caller how long its group's write took, a part of its wait", async () => {
    const log = openLog(db);
    const timed = () => {
      const timing = { flushMs: -1 };
      const started = performance.now();
      return { timing, done: (call: Promise<unknown>) => call.then(() => performance.now() - started) };
    };
    // The first caller's group goes alone; the three that come while it is written share the next.
    const first = timed();
    const firstWait = first.done(log.append([auditEvent()], first.timing));
    await new Promise((resolve) => setImmediate(resolve));
    const rest = range(3).map(() => timed());
    const waits = await Promise.all([firstWait, ...rest.map((r) => r.done(log.append([auditEvent()], r.timing)))]);
    expect(log.stats()).toMatchObject({ appended: 4, batches: 2 });
    const flushes = [first, ...rest].map((r) => r.timing.flushMs);
    for (const [i, flushMs] of flushes.entries()) {
      expect(flushMs).toBeGreaterThan(0);
      expect(flushMs).toBeLessThanOrEqual(waits[i]!);
    }
    // One group, one write: its three callers are told the same.
    expect(new Set(flushes.slice(1)).size).toBe(1);
  });

  it('refuses a malformed event alone: its batch-mates are still written', async () => {
    const log = openLog(db);
    const bad = [
      auditEvent({ action: 'delete' as AuditEventInput['action'] }),
      auditEvent({ decision: 'maybe' as AuditEventInput['decision'] }),
      auditEvent({ principalId: '' }),
      auditEvent({ recordIds: [null as unknown as string] }),
      auditEvent({ reason: 'nul\u0000byte' }),
      auditEvent({ subject: 'lone \ud800 surrogate' }),
    ];
    const good = log.append([auditEvent()]);
    for (const event of bad) {
      await expect(log.append([auditEvent(), event])).rejects.toMatchObject({ kind: 'invalid' });
    }
    await expect(good).resolves.toHaveLength(1);
    expect(await storedSeqs()).toEqual([1]);
  });

  it('rejects every caller of a failed transaction, commits none of it, and recovers', async () => {
    const error = vi.fn();
    const log = openLog(db, { logger: { error } });
    await log.append([auditEvent()]);
    // A constraint that one event of the batch violates makes the single INSERT fail after some rows went in.
    await db.execute(sql`alter table audit_events add constraint audit_test_fault check (principal_id <> 'u-fault')`);
    try {
      const timing = { flushMs: -1 };
      const calls = [
        log.append([auditEvent(), auditEvent()], timing),
        log.append([auditEvent({ principalId: 'u-fault' })]),
        log.append([auditEvent()]),
      ];
      for (const call of calls) {
        await expect(call).rejects.toBeInstanceOf(AuditStoreError);
        await expect(call).rejects.toMatchObject({ kind: 'unavailable' });
      }
      // No write committed them: nothing is said of one.
      expect(timing.flushMs).toBe(-1);
    } finally {
      await db.execute(sql`alter table audit_events drop constraint audit_test_fault`);
    }
    expect(await storedSeqs()).toEqual([1]);
    expect(log.stats()).toMatchObject({ appended: 1, batches: 1, failures: 1, queued: 0 });
    expect(error).toHaveBeenCalledWith({ err: expect.objectContaining({ code: '23514' }), events: 4 }, 'audit append failed');
    expect(JSON.stringify(error.mock.calls)).not.toMatch(/u-rep-1|u-fault/);

    await log.append([auditEvent()]);
    expect(await verifyChain(db)).toEqual({ ok: true, count: 2, lastSeq: 2 });
  });

  it('rejects appends when the database is gone', async () => {
    const gone = testDb.reopen ? await testDb.reopen() : await createDb({ kind: 'pglite', dataDir: 'memory://' });
    await gone.close();
    const log = openLog(gone.db);
    await expect(log.append([auditEvent()])).rejects.toMatchObject({ kind: 'unavailable' });
    expect(log.stats()).toMatchObject({ appended: 0, failures: 1 });
  });

  it.skipIf(!process.env.DATABASE_URL)('rejects instead of hanging when another appender holds the chain lock', async () => {
    const other = await testDb.reopen!();
    try {
      const log = openLog(db, { flushTimeoutMs: 200 });
      // With a head it committed, the log would insert in one statement; a held lock sends it the locked way.
      await log.append([auditEvent()]);
      await other.db.transaction(async (tx) => {
        await tx.execute(sql`select pg_advisory_xact_lock(${CHAIN_LOCK_KEY})`);
        await expect(log.append([auditEvent()])).rejects.toMatchObject({ kind: 'unavailable' });
      });
      await expect(log.append([auditEvent()])).resolves.toHaveLength(1);
      expect(await verifyChain(db)).toEqual({ ok: true, count: 2, lastSeq: 2 });
    } finally {
      await other.close();
    }
  });

  it('flushes what is queued on close, then refuses new appends', async () => {
    const log = openLog(db);
    const pending = range(5).map(() => log.append([auditEvent()]));
    await log.close();
    expect(log.stats()).toMatchObject({ appended: 5, queued: 0 });
    await expect(Promise.all(pending)).resolves.toHaveLength(5);
    await expect(log.append([auditEvent()])).rejects.toMatchObject({ kind: 'closed' });
  });

  it('stores any well-formed text so that it hashes the same when read back', async () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => !s.includes('\u0000'));
    const event = fc.record({
      principalId: text.filter((s) => s !== ''),
      roles: fc.array(text, { maxLength: 3 }),
      recordIds: fc.array(fc.oneof(text, fc.constantFrom('NULL', '"', '\\', '{}', ',', ' a ')), { maxLength: 4 }),
      reason: fc.option(text),
      raw: fc.array(text, { maxLength: 3 }),
    });
    const log = openLog(db);
    await fc.assert(
      fc.asyncProperty(fc.array(event, { minLength: 1, maxLength: 3 }), async (events) => {
        await log.append(
          events.map((e) => auditEvent({ ...e, fields: { raw: e.raw, masked: [], revealed: [], denied: [] } })),
        );
      }),
      { numRuns: 40 },
    );
    expect(await verifyChain(db)).toMatchObject({ ok: true });
  });
});

describe('audit_events append-only trigger', () => {
  it.each([
    ['UPDATE', sql`update audit_events set principal_id = 'u-admin-1'`],
    ['DELETE', sql`delete from audit_events`],
    ['TRUNCATE', sql`truncate audit_events`],
  ])('refuses %s, even from the table owner', async (op, statement) => {
    await openLog(db).append([auditEvent()]);
    await expect(db.execute(statement)).rejects.toMatchObject({
      cause: expect.objectContaining({ message: `audit_events is append-only: ${op} refused` }),
    });
    expect(await storedSeqs()).toEqual([1]);
  });

  it('grants custos_app SELECT and INSERT on audit_events, nothing more', async () => {
    const privileges = ['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER'];
    const rows = await queryRows(
      db,
      sql`select p as privilege, has_table_privilege('custos_app', 'audit_events', p) as granted
            from unnest(${sql.raw(`array['${privileges.join("','")}']`)}) as p`,
    );
    const granted = rows.filter((r) => r.granted === true).map((r) => r.privilege);
    expect(granted).toEqual(['SELECT', 'INSERT']);
  });
});

describe('the record-id index pending list', () => {
  async function accessesOf(id: string): Promise<number[]> {
    const rows = await queryRows(db, sql`select seq::int as seq from audit_events where record_ids @> array[${id}]::text[] order by seq`);
    return rows.map((r) => r.seq as number);
  }

  it("takes new record ids into GIN's pending list, with a limit that only matters when nothing merges", async () => {
    const rows = await queryRows(db, sql`select reloptions from pg_class where relname = 'audit_events_record_ids_idx'`);
    expect(rows[0]?.reloptions).toEqual(['fastupdate=on', 'gin_pending_list_limit=32768']);
  });

  it('merges what commits left pending into the index, the ids findable before and after', async () => {
    const log = openLog(db, { indexMergeDelayMs: 0 });
    await log.mergeIndex();
    const ids = range(400).map((i) => `c-merge-${i}`);
    for (const chunk of [ids.slice(0, 200), ids.slice(200)]) await log.append([auditEvent({ recordIds: chunk })]);
    expect(await accessesOf('c-merge-7')).toEqual([1]);
    expect(await accessesOf('c-merge-399')).toEqual([2]);
    expect(await log.mergeIndex()).toBeGreaterThan(0);
    expect(await log.mergeIndex()).toBe(0);
    expect(await accessesOf('c-merge-7')).toEqual([1]);
    expect(await accessesOf('c-merge-399')).toEqual([2]);
    expect(await accessesOf('c-merge-401')).toEqual([]);
    expect(log.stats()).toMatchObject({ indexMerges: 3, indexMergesSkipped: 0, indexMergeFailures: 0 });
    expect(log.stats().indexPagesMerged).toBeGreaterThan(0);
  });

  it('merges in the background after a commit, once, and not after close', async () => {
    const log = openLog(db, { indexMergeDelayMs: 10 });
    await log.append([auditEvent({ recordIds: range(300).map((i) => `c-bg-${i}`) })]);
    await vi.waitFor(() => expect(log.stats().indexMerges).toBe(1), { timeout: 5000, interval: 10 });
    expect(log.stats().indexPagesMerged).toBeGreaterThan(0);
    expect(await openLog(db, { indexMergeDelayMs: 0 }).mergeIndex()).toBe(0);

    await log.append([auditEvent()]);
    await log.close();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(log.stats().indexMerges).toBe(1);
  });

  it('loses no id when merges run while appends commit', async () => {
    const log = openLog(db, { indexMergeDelayMs: 1 });
    const ids = (call: number) => range(40).map((i) => `c-race-${call}-${i}`);
    const calls = range(30).map(async (call) => {
      const [record] = await log.append([auditEvent({ recordIds: ids(call) })]);
      if (call % 5 === 0) await log.mergeIndex();
      return record!.seq;
    });
    const seqs = await Promise.all(calls);
    await log.close();
    expect(log.stats().indexMerges).toBeGreaterThan(0);
    for (const call of [1, 7, 15, 30]) {
      for (const id of [ids(call)[0]!, ids(call)[39]!]) expect(await accessesOf(id)).toEqual([seqs[call - 1]]);
    }
    expect(await verifyChain(db)).toMatchObject({ ok: true, count: 30 });
  });

  it.skipIf(!process.env.DATABASE_URL)('skips, without waiting, while another process merges', async () => {
    const log = openLog(db, { indexMergeDelayMs: 0 });
    await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${INDEX_MERGE_LOCK_KEY})`);
      expect(await log.mergeIndex()).toBe(-1);
    });
    expect(log.stats()).toMatchObject({ indexMerges: 0, indexMergesSkipped: 1 });
    expect(await log.mergeIndex()).toBeGreaterThanOrEqual(0);
  });

  it('counts and logs a failed merge without throwing, by error code only', async () => {
    const error = vi.fn();
    const failing = {
      execute: () => Promise.reject(Object.assign(new Error('permission denied for function u-rep-1'), { code: '42501' })),
    } as unknown as Db;
    const log = openLog(failing, { logger: { error }, indexMergeDelayMs: 0 });
    await expect(log.mergeIndex()).resolves.toBe(-1);
    expect(log.stats()).toMatchObject({ indexMerges: 0, indexMergeFailures: 1 });
    expect(error).toHaveBeenCalledWith({ err: { name: 'Error', code: '42501' } }, 'audit index merge failed');
    expect(JSON.stringify(error.mock.calls)).not.toMatch(/u-rep-1|permission/);
  });

  it('lets the service role call the merge, through a definer function with a fixed search path, and nobody else', async () => {
    const rows = await queryRows(
      db,
      sql`select has_function_privilege('custos_app', 'audit_merge_pending_record_ids()', 'execute') as app,
                 has_function_privilege('public', 'audit_merge_pending_record_ids()', 'execute') as everyone,
                 p.prosecdef as definer, p.proconfig as config
            from pg_proc p where p.proname = 'audit_merge_pending_record_ids'`,
    );
    expect(rows).toEqual([{ app: true, everyone: false, definer: true, config: ['search_path=pg_catalog, pg_temp'] }]);
  });
});
