import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows } from '../db/execute.js';
import { recordColumns, toRecord } from './queries.js';
import { type AuditRecord, GENESIS_HASH, hashRecord } from './record.js';

export type ChainProblem = 'hash-mismatch' | 'broken-link' | 'missing-record';

export type ChainVerdict =
  | { ok: true; count: number; lastSeq: number }
  /** `count`: records found intact before the problem. */
  | { ok: false; count: number; seq: number; problem: ChainProblem };

/**
 * Walks the chain in seq order, a batch at a time (bounded memory), and
 * reports the first record that is missing (a gap in seq), edited (its hash
 * no longer matches its content), or relinked (its prev_hash is not the hash
 * of the record before it).
 *
 * Limitation: deleting the newest records (truncating the tail) leaves a
 * shorter chain that is still intact, so the chain alone cannot detect it.
 * Anchoring the head (seq, hash) somewhere the database owner cannot write
 * (a signed checkpoint, an external log) is what closes that gap.
 */
export async function verifyChain(db: Db, opts: { batch?: number } = {}): Promise<ChainVerdict> {
  const batch = Math.max(1, opts.batch ?? 1000);
  let count = 0;
  let prevHash = GENESIS_HASH;
  for (;;) {
    const rows = await queryRows(
      db,
      sql`select ${recordColumns} from audit_events where seq > ${count} order by seq limit ${batch}`,
    );
    for (const record of rows.map(toRecord)) {
      const problem = check(record, count + 1, prevHash);
      if (problem) return { ok: false, count, seq: problem === 'missing-record' ? count + 1 : record.seq, problem };
      prevHash = record.hash;
      count += 1;
    }
    if (rows.length < batch) return { ok: true, count, lastSeq: count };
  }
}

/** The problem with one record, given the seq and prev_hash it must have, or null. */
function check(record: AuditRecord, expectedSeq: number, prevHash: Buffer): ChainProblem | null {
  if (record.seq !== expectedSeq) return 'missing-record';
  if (!record.prevHash.equals(prevHash)) return 'broken-link';
  if (!hashRecord(record.prevHash, record).equals(record.hash)) return 'hash-mismatch';
  return null;
}
