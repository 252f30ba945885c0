import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBuffer } from '../db/execute.js';
import { customerKeys } from '../db/schema/index.js';
import { DecryptionError, KeyUnavailableError, rewrapDataKey, type Keyring } from './envelope.js';

/**
 * Online KEK rotation: every data key not wrapped by the active KEK is
 * re-wrapped under it, in short batches that each commit on their own. The
 * service keeps serving meanwhile (readers unwrap with whichever KEK a row
 * names), and the work left is always "rows whose kek_id is not the active
 * one", so an interrupted run is resumed by running it again.
 */

/** Why a rotation cannot start or continue. Messages name KEK ids, counts and customer ids, never key material. */
export class RotationError extends Error {
  override name = 'RotationError';
}

export interface RotationProgress {
  /** Keys re-wrapped so far by this run. */
  done: number;
  /** Keys that were wrapped by another KEK when the run began. */
  total: number;
  elapsedMs: number;
}

export interface RotateOptions {
  /** Keys per transaction (default 500). */
  batchSize?: number;
  /** Pause between batches, to spare a busy database (default 0). */
  pauseMs?: number;
  /** Stops after the batch under way has committed; a later run continues. */
  signal?: AbortSignal;
  onProgress?: (progress: RotationProgress) => void;
  /** Passes that find every remaining row locked by other transactions before giving up (default 5). */
  lockedRetries?: number;
}

export interface RotationSummary {
  activeKekId: string;
  /** Keys wrapped by another KEK when the run began, by KEK id. */
  pendingAtStart: ReadonlyMap<string, number>;
  rewrapped: number;
  /** Keys still wrapped by another KEK when the run ended (0 once complete). */
  remaining: number;
  batches: number;
  elapsedMs: number;
  /** Stopped by the signal before the work was done. */
  interrupted: boolean;
}

export const DEFAULT_BATCH_SIZE = 500;
export const MAX_BATCH_SIZE = 10_000;

/** How many data keys each non-active KEK still wraps. */
export async function pendingByKek(db: Db, activeKekId: string): Promise<Map<string, number>> {
  const rows = await queryRows(
    db,
    sql`SELECT ${customerKeys.kekId} AS kek_id, count(*)::int AS n FROM ${customerKeys}
        WHERE ${customerKeys.kekId} <> ${activeKekId} GROUP BY ${customerKeys.kekId} ORDER BY ${customerKeys.kekId}`,
  );
  return new Map(rows.map((r) => [String(r.kek_id), Number(r.n)]));
}

/** KEK ids that wrap some data key but are missing from the keyring, with how many keys each wraps. */
export function unknownKeks(keyring: Keyring, pending: ReadonlyMap<string, number>): Array<[string, number]> {
  return [...pending].filter(([kekId]) => !keyring.keys.has(kekId));
}

/** Throws a RotationError unless the active KEK and every KEK still in use are in the keyring. */
export function assertRotatable(keyring: Keyring, pending: ReadonlyMap<string, number>): void {
  if (!keyring.keys.has(keyring.activeKekId)) {
    throw new RotationError(`the active key-encryption key ${keyring.activeKekId} is not in KEYRING`);
  }
  const unknown = unknownKeks(keyring, pending);
  if (unknown.length > 0) {
    const list = unknown.map(([kekId, n]) => `${kekId} (${n} ${n === 1 ? 'key' : 'keys'})`).join(', ');
    throw new RotationError(`data keys are wrapped by key-encryption keys missing from KEYRING: ${list}; add them to KEYRING to rotate these keys`);
  }
}

const sum = (m: ReadonlyMap<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);

/** Re-wraps every data key not wrapped by the keyring's active KEK; see the module comment. */
export async function rotateKeys(db: Db, keyring: Keyring, opts: RotateOptions = {}): Promise<RotationSummary> {
  const batchSize = opts.batchSize ?? DEFAULT_BATCH_SIZE;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH_SIZE) {
    throw new RangeError(`batchSize must be an integer from 1 to ${MAX_BATCH_SIZE}`);
  }
  const started = performance.now();
  const pendingAtStart = await pendingByKek(db, keyring.activeKekId);
  assertRotatable(keyring, pendingAtStart);
  const total = sum(pendingAtStart);
  let rewrapped = 0;
  let batches = 0;
  let after: string | null = null;
  let lockedPasses = 0;
  const maxLockedPasses = opts.lockedRetries ?? 5;
  while (!opts.signal?.aborted) {
    const batch = await rotateBatch(db, keyring, after, batchSize);
    if (batch.count > 0) {
      rewrapped += batch.count;
      batches += 1;
      after = batch.last;
      opts.onProgress?.({ done: rewrapped, total, elapsedMs: performance.now() - started });
      if (opts.pauseMs) await sleep(opts.pauseMs, opts.signal);
      continue;
    }
    // End of a pass. Rows skipped while locked by another transaction, or
    // written under an old KEK by a pod not yet rolled, are picked up by another pass.
    if (sum(await pendingByKek(db, keyring.activeKekId)) === 0) break;
    if (after === null) {
      lockedPasses += 1;
      if (lockedPasses > maxLockedPasses) break;
      await sleep(100 * lockedPasses, opts.signal);
    }
    after = null;
  }
  const remaining = sum(await pendingByKek(db, keyring.activeKekId));
  return {
    activeKekId: keyring.activeKekId,
    pendingAtStart,
    rewrapped,
    remaining,
    batches,
    elapsedMs: performance.now() - started,
    interrupted: remaining > 0 && opts.signal?.aborted === true,
  };
}

/**
 * One transaction: lock up to `size` keys not under the active KEK (after
 * `after` in id order; rows another transaction holds are skipped, not
 * waited for), re-wrap them in memory, write them back in one UPDATE.
 */
async function rotateBatch(db: Db, keyring: Keyring, after: string | null, size: number): Promise<{ count: number; last: string | null }> {
  const active = keyring.activeKekId;
  return db.transaction(async (tx) => {
    const rows = await queryRows(
      tx,
      sql`SELECT ${customerKeys.customerId}::text AS id, ${customerKeys.kekId} AS kek_id, ${customerKeys.wrappedKey} AS wrapped
          FROM ${customerKeys}
          WHERE ${customerKeys.kekId} <> ${active}${after === null ? sql`` : sql` AND ${customerKeys.customerId} > ${after}::uuid`}
          ORDER BY ${customerKeys.customerId} LIMIT ${size} FOR UPDATE SKIP LOCKED`,
    );
    if (rows.length === 0) return { count: 0, last: null };
    const values = rows.map((row) => {
      const id = String(row.id);
      const wrapped = rewrapRow(keyring, id, String(row.kek_id), toBuffer(row.wrapped));
      return sql`(${id}::uuid, ${wrapped}::bytea)`;
    });
    await tx.execute(
      sql`UPDATE ${customerKeys} SET "kek_id" = ${active}, "wrapped_key" = v.wrapped, "rotated_at" = now()
          FROM (VALUES ${sql.join(values, sql`, `)}) AS v(id, wrapped)
          WHERE ${customerKeys.customerId} = v.id`,
    );
    return { count: rows.length, last: String(rows.at(-1)!.id) };
  });
}

function rewrapRow(keyring: Keyring, customerId: string, kekId: string, wrapped: Buffer | null): Buffer {
  if (!wrapped) throw new RotationError(`the data key of customer ${customerId} is empty`);
  try {
    return rewrapDataKey(keyring, customerId, { kekId, wrapped }).wrapped;
  } catch (e) {
    if (e instanceof KeyUnavailableError) {
      throw new RotationError(`a data key wrapped by ${kekId}, which is not in KEYRING, appeared during the run; add ${kekId} to KEYRING and run again`);
    }
    if (e instanceof DecryptionError) {
      throw new RotationError(`the data key of customer ${customerId} does not unwrap with ${kekId}: is the key material of ${kekId} in KEYRING the right one?`);
    }
    throw e;
  }
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
