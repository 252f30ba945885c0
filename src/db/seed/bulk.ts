import { getTableColumns, sql, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import type { Db } from '../client.js';

/** Anything that runs SQL: the database or a transaction on it. */
export type Executor = Pick<Db, 'execute'>;

/** A JSON-safe column value: bytea as PostgreSQL hex text, timestamps as ISO 8601. */
function jsonValue(value: unknown): unknown {
  if (Buffer.isBuffer(value)) return `\\x${value.toString('hex')}`;
  if (value instanceof Date) return value.toISOString();
  return value;
}

/**
 * Inserts many rows with one statement and one bind parameter: the rows go
 * as a JSON array that PostgreSQL expands with json_populate_recordset. The
 * same statement works on PGlite and postgres.js, has no 65535-parameter
 * ceiling, and measured as fast as unnest() arrays and 4-5x faster than
 * multi-row VALUES. Existing ids are skipped, so two seeders racing on the
 * same deterministic ids converge instead of failing.
 *
 * Columns are those set on the first row; rows must all set the same ones.
 */
export async function insertJsonRows<T extends PgTable>(
  db: Executor,
  table: T,
  rows: ReadonlyArray<T['$inferInsert']>,
): Promise<void> {
  const first = rows[0];
  if (!first) return;
  const columns = Object.entries(getTableColumns(table)).filter(([key]) => (first as Record<string, unknown>)[key] !== undefined);
  const json = JSON.stringify(
    rows.map((row) => {
      const out: Record<string, unknown> = {};
      for (const [key, column] of columns) out[column.name] = jsonValue((row as Record<string, unknown>)[key]);
      return out;
    }),
  );
  const names: SQL = sql.join(
    columns.map(([, column]) => sql.identifier(column.name)),
    sql`, `,
  );
  await db.execute(
    sql`insert into ${table} (${names}) select ${names} from json_populate_recordset(null::${table}, ${json}::json) on conflict do nothing`,
  );
}
