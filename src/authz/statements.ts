import { fillPlaceholders, type SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import type { Db } from '../db/client.js';
import { rowsOf, type Row } from '../db/execute.js';

/**
 * Compiled policed statements. drizzle's SQL → text compilation costs more
 * than the rest of a small read, and its text only changes with the query's
 * shape, so the enforcement layer compiles each shape once: per-request
 * values are drizzle placeholders, filled per run (the audit appender's
 * INSERTs, src/audit/store.ts, are compiled the same way). Nothing here holds
 * a row or a value read from the database: only statement text and the constants
 * the rules put into it (which the cache key covers).
 */
export interface Statement {
  /** SQL text with $n parameters: what spans record (never the values). */
  text: string;
  params: unknown[];
  /** Run as a named prepared statement (postgres.js), for texts of bounded number. */
  prepare: boolean;
}

export interface Compiled {
  text: string;
  /** Constants and drizzle Placeholders, in $n order. */
  params: unknown[];
  prepare: boolean;
}

const dialect = new PgDialect();

/** Every text that was ever prepared stays prepared on each pooled connection: their number is capped. */
const MAX_PREPARED_TEXTS = 200;
const preparedTexts = new Set<string>();

/** Compiles a statement (placeholders stay placeholders). */
export function compile(statement: SQL): Compiled {
  const { sql: text, params } = dialect.sqlToQuery(statement);
  let prepare = preparedTexts.has(text);
  if (!prepare && preparedTexts.size < MAX_PREPARED_TEXTS) {
    preparedTexts.add(text);
    prepare = true;
  }
  return { text, params, prepare };
}

/** The statement of one run: placeholders replaced by this request's values. */
export function bind(compiled: Compiled, values: Record<string, unknown>): Statement {
  return { text: compiled.text, params: fillPlaceholders(compiled.params, values), prepare: compiled.prepare };
}

/**
 * Runs a compiled statement through drizzle's own session (the path
 * `db.execute` takes, minus the compilation), whichever driver is behind the
 * Db. A name makes postgres.js prepare it on each connection; PGlite ignores it.
 */
export async function runStatement(db: Db, statement: Statement): Promise<Row[]> {
  const prepared = db._.session.prepareQuery({ sql: statement.text, params: statement.params }, undefined, statement.prepare ? 'custos' : undefined, false);
  return rowsOf(await prepared.execute());
}

/** A Map bounded to `limit` entries, dropping the least recently used. */
export class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly limit: number) {}

  get(key: string): V | undefined {
    const value = this.map.get(key);
    if (value !== undefined) {
      this.map.delete(key);
      this.map.set(key, value);
    }
    return value;
  }

  set(key: string, value: V): void {
    this.map.delete(key);
    this.map.set(key, value);
    if (this.map.size > this.limit) this.map.delete(this.map.keys().next().value as string);
  }
}
