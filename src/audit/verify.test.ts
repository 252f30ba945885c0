import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createDb, type Db } from '../db/client.js';
import { hashRecord } from './record.js';
import { AuditLog } from './store.js';
import { asOwner, auditEvent, openTestDb, type TestDb } from './test-db.js';
import { verifyChain } from './verify.js';
import { trailOf } from './queries.js';

let testDb: TestDb;
let db: Db;

beforeAll(async () => {
  testDb = await openTestDb();
  db = testDb.handle.db;
});

afterAll(async () => {
  await testDb?.close();
});

/** A fresh chain of `n` records, each with its own trace id t-<seq>. */
async function chainOf(target: Db, n: number): Promise<void> {
  await asOwner(target, sql`delete from audit_events`);
  const log = new AuditLog(target);
  for (let i = 1; i <= n; i += 1) await log.append([auditEvent({ traceId: `t-${i}`, recordIds: [`c-${i}`] })]);
}

describe(verifyChain.name, () => {
  beforeEach(() => chainOf(db, 10));

  it('finds an empty trail intact', async () => {
    await asOwner(db, sql`delete from audit_events`);
    expect(await verifyChain(db)).toEqual({ ok: true, count: 0, lastSeq: 0 });
  });

  it('finds an untouched chain intact, whatever the batch size', async () => {
    for (const batch of [1, 3, 10, 1000]) {
      expect(await verifyChain(db, { batch })).toEqual({ ok: true, count: 10, lastSeq: 10 });
    }
  });

  it('reports hash-mismatch at exactly the row edited behind the service', async () => {
    await asOwner(db, sql`update audit_events set record_ids = array['c-other'] where seq = 7`);
    expect(await verifyChain(db, { batch: 3 })).toEqual({ ok: false, count: 6, seq: 7, problem: 'hash-mismatch' });
  });

  it('reports broken-link after a row edited and re-hashed, at the next row', async () => {
    const [record] = await trailOf(db, 't-4');
    const forged = hashRecord(record!.prevHash, { ...record!, principalId: 'u-rep-2' });
    await asOwner(db, sql`update audit_events set principal_id = 'u-rep-2', hash = ${forged} where seq = 4`);
    expect(await verifyChain(db, { batch: 3 })).toEqual({ ok: false, count: 4, seq: 5, problem: 'broken-link' });
  });

  it('reports broken-link at a row whose prev_hash was rewritten', async () => {
    await asOwner(db, sql`update audit_events set prev_hash = sha256('x'::bytea) where seq = 2`);
    expect(await verifyChain(db)).toEqual({ ok: false, count: 1, seq: 2, problem: 'broken-link' });
  });

  it('reports missing-record at the first deleted seq', async () => {
    await asOwner(db, sql`delete from audit_events where seq in (5, 6)`);
    expect(await verifyChain(db, { batch: 4 })).toEqual({ ok: false, count: 4, seq: 5, problem: 'missing-record' });
  });

  it('reports missing-record at seq 1 when the oldest record is gone', async () => {
    await asOwner(db, sql`delete from audit_events where seq = 1`);
    expect(await verifyChain(db)).toEqual({ ok: false, count: 0, seq: 1, problem: 'missing-record' });
  });

  // The known limit of a bare hash chain: a shorter chain is still a valid chain.
  // Only an anchor of the head kept outside the database (a later step) detects this.
  it('cannot tell that the newest records were deleted (truncated tail)', async () => {
    await asOwner(db, sql`delete from audit_events where seq > 8`);
    expect(await verifyChain(db)).toEqual({ ok: true, count: 8, lastSeq: 8 });
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function runCli(env: Record<string, string>): Promise<Run> {
  const { DATABASE_URL: _ignored, ...inherited } = process.env;
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/audit-verify.ts'],
      { env: { ...inherited, NODE_ENV: 'test', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (error.code as number) : 0, stdout, stderr }),
    );
  });
}

describe('audit:verify CLI', () => {
  let dataDir: string;

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'custos-audit-'));
  });

  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  async function onDataDir(work: (target: Db) => Promise<void>): Promise<void> {
    const handle = await createDb({ kind: 'pglite', dataDir });
    try {
      await handle.migrate();
      await work(handle.db);
    } finally {
      await handle.close();
    }
  }

  it('exits 0 on an intact chain, then 1 naming the seq once a row is tampered with', async () => {
    await onDataDir((target) => chainOf(target, 5));
    const intact = await runCli({ DATA_DIR: dataDir });
    expect(intact).toMatchObject({ code: 0, stdout: 'audit chain intact: 5 records (last seq 5)\n' });

    await onDataDir((target) => asOwner(target, sql`update audit_events set decision = 'deny' where seq = 3`));
    const broken = await runCli({ DATA_DIR: dataDir });
    expect(broken).toMatchObject({ code: 1, stdout: 'audit chain BROKEN at seq 3: hash-mismatch\n' });
  }, 180_000);

  it('exits 2 with one line and no stack when it cannot check', async () => {
    const unreachable = await runCli({ DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
    expect(unreachable.code).toBe(2);
    expect(unreachable.stderr).toMatch(/^audit:verify: failed: .*\n$/);

    const misconfigured = await runCli({ DATA_DIR: dataDir, PORT: 'eighty' });
    expect(misconfigured.code).toBe(2);
    expect(misconfigured.stderr).toMatch(/^audit:verify: invalid configuration: PORT: .*\n$/);
  }, 120_000);
});
