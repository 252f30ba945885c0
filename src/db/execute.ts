import type { SQL } from 'drizzle-orm';
import type { Db } from './client.js';

export type Row = Record<string, unknown>;

/** The plain rows of a statement's result, whichever driver is behind the Db (PGlite returns {rows}, postgres.js an array). */
export function rowsOf(result: unknown): Row[] {
  return Array.isArray(result) ? (result as Row[]) : (result as { rows: Row[] }).rows;
}

/**
 * Runs raw SQL and returns plain rows. The statement starts within the same turn as the call (drizzle runs it when
 * awaited here), so statements started together on one transaction go out in call order, and postgres.js pipelines
 * them in one write. It goes unnamed: with parameters, postgres.js sends it twice (describe, then run) and PostgreSQL
 * plans it each time. A statement on a request's path whose text is one of few is compiled once and run prepared
 * instead (compile, bind and runStatement in src/authz/statements.ts), as the policed reads and the audit's are.
 */
export async function queryRows(db: Db, query: SQL): Promise<Row[]> {
  return rowsOf(await db.execute(query));
}

/** A bytea value as a Buffer (PGlite yields Uint8Array, postgres.js Buffer). */
export function toBuffer(value: unknown): Buffer | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return null;
}
