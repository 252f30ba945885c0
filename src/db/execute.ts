import type { SQL } from 'drizzle-orm';
import type { Db } from './client.js';

export type Row = Record<string, unknown>;

/** Runs raw SQL and returns plain rows, whichever driver is behind the Db (PGlite returns {rows}, postgres.js an array). */
export async function queryRows(db: Db, query: SQL): Promise<Row[]> {
  const result: unknown = await db.execute(query);
  if (Array.isArray(result)) return result as Row[];
  return (result as { rows: Row[] }).rows;
}

/** A bytea value as a Buffer (PGlite yields Uint8Array, postgres.js Buffer). */
export function toBuffer(value: unknown): Buffer | null {
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return null;
}
