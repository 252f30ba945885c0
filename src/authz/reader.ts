import { subject as asSubject } from '@casl/ability';
import { sql, type SQL } from 'drizzle-orm';
import type { PgTable } from 'drizzle-orm/pg-core';
import { decryptField, DecryptionError, KeyUnavailableError, unwrapDataKey, type Keyring } from '../crypto/envelope.js';
import type { Db } from '../db/client.js';
import { queryRows, toBuffer, type Row } from '../db/execute.js';
import { customerKeys, customers } from '../db/schema/index.js';
import { cellKey, type CellPlan, type Projection } from './projection.js';
import { summarize, type AccessDecision } from './decision.js';
import { RequestAuthz } from './request-authz.js';
import { subjects, type SubjectName } from './subjects.js';

export type Cell =
  | { state: 'raw' | 'masked' | 'revealed'; value: unknown }
  | { state: 'denied' }
  | { state: 'unavailable' };

/** One policed row: its id, the attributes it was re-checked on, and each requested cell already rendered. */
export interface RenderedRow {
  id: string;
  attrs: Record<string, unknown>;
  cells: Map<string, Cell>;
  extra: Row;
}


/** Reported when the in-memory re-check disagrees with SQL: the row is dropped or the cell masked. */
export interface EnforcementFault {
  subject: SubjectName;
  recordId: string;
  kind: 'row' | 'read' | 'reveal' | 'decrypt';
  field?: string;
}

export interface ReadContext {
  db: Db;
  authz: RequestAuthz;
  keyring: Keyring;
  onFault: (fault: EnforcementFault) => void;
  /** Tracing and audit hooks; without one, reads run unobserved (tools, unit tests). */
  observer?: ReadObserver;
}

/** Wraps one policed read: the enforcement span, the SQL span, and the decisions for the audit trail. */
export interface ReadObserver {
  enforce<T>(subject: SubjectName, run: (scope: EnforceScope) => Promise<T>): Promise<T>;
}

export interface EnforceScope {
  query(statement: SQL): Promise<Row[]>;
  decided(decisions: AccessDecision[]): void;
}

const unobserved: ReadObserver = {
  enforce: (_subject, run) => run({ query: () => Promise.reject(new Error('unreachable')), decided: () => undefined }),
};

export interface ReadQuery {
  projection: Projection;
  /** Extra predicates (filters, cursor, parent ids): AND-ed with the row policy. */
  where: SQL[];
  orderBy: SQL[];
  limit?: number;
  /** Extra result columns (cursor keys, partition ids). */
  extra?: Array<[string, SQL]>;
  /**
   * Nested loads: at most `perParent` rows per parent. `by`, `orderBy` and
   * `after` name result columns (aliases), since they apply around the base SELECT.
   */
  partition?: { by: string; perParent: number; orderBy: SQL; after?: SQL };
}

/** Builds the policed SELECT: row policy in WHERE, projection in the SELECT list. */
export function buildSelect(ctx: ReadContext, q: ReadQuery): SQL {
  const { projection: p } = q;
  const table = subjects[p.subject].table as PgTable;
  const rowPolicy = rowWhere(ctx.authz, p.subject);
  const list: Array<[string, SQL]> = [...p.select, ...(q.extra ?? [])];
  let from = sql`${table}`;
  if (p.wrappedKey) {
    const any = sql.join(p.wrappedKey.anyReveal.map((c) => sql`(${c})`), sql` OR `);
    list.push([p.wrappedKey.key, sql`CASE WHEN ${any} THEN ${customerKeys.wrappedKey} END`]);
    list.push([p.wrappedKey.kekId, sql`CASE WHEN ${any} THEN ${customerKeys.kekId} END`]);
    from = sql`${table} LEFT JOIN ${customerKeys} ON ${customerKeys.customerId} = ${customers.id}`;
  }
  const columns = sql.join(
    list.map(([k, e]) => sql`${e} AS ${sql.identifier(k)}`),
    sql`, `,
  );
  const where = sql.join([rowPolicy, ...q.where].map((w) => sql`(${w})`), sql` AND `);
  const order = q.orderBy.length ? sql` ORDER BY ${sql.join(q.orderBy, sql`, `)}` : sql``;
  if (q.partition) {
    const { by, perParent, orderBy, after } = q.partition;
    const base = sql`SELECT ${columns} FROM ${from} WHERE ${where}`;
    const rn = sql`row_number() OVER (PARTITION BY ${sql.identifier(by)} ORDER BY ${orderBy})`;
    const keyset = after ? sql` WHERE ${after}` : sql``;
    return sql`SELECT * FROM (SELECT *, ${rn} AS "__rn" FROM (${base}) AS base${keyset}) AS ranked WHERE "__rn" <= ${perParent} ORDER BY ${sql.identifier(by)}, "__rn"`;
  }
  const limit = q.limit !== undefined ? sql` LIMIT ${q.limit}` : sql``;
  return sql`SELECT ${columns} FROM ${from} WHERE ${where}${order}${limit}`;
}

/** The row policy of `read` on a subject as SQL (no rule → false). */
export function rowWhere(authz: RequestAuthz, subject: SubjectName): SQL {
  return RequestAuthz.toSql(authz.grant('read', subject));
}

/** Runs a policed read: SQL decides, memory re-checks every row, reveals are decrypted here and only here. */
export async function readRows(ctx: ReadContext, q: ReadQuery): Promise<RenderedRow[]> {
  return (await run(ctx, q, (rows) => rows)).rows;
}

export interface ReadPage {
  rows: RenderedRow[];
  /** More rows exist after this page (for partitioned reads: after some parent's page). */
  hasMore: boolean;
  /** Partitioned reads: the parents (value of the `by` column) that have more rows. */
  parentsWithMore: ReadonlySet<string>;
}

/**
 * A page of `size` rows (per parent when partitioned). One more row is fetched
 * to learn whether the page is the last; that row is never rendered, never
 * decrypted and never audited, since the caller does not receive it.
 */
export async function readPage(ctx: ReadContext, q: ReadQuery & { size: number }): Promise<ReadPage> {
  const parentsWithMore = new Set<string>();
  let hasMore = false;
  const query: ReadQuery = q.partition ? { ...q, partition: { ...q.partition, perParent: q.size + 1 } } : { ...q, limit: q.size + 1 };
  const result = await run(ctx, query, (rows) => {
    if (!q.partition) {
      hasMore = rows.length > q.size;
      return rows.slice(0, q.size);
    }
    const by = q.partition.by;
    return rows.filter((r) => {
      if (Number(r.__rn) <= q.size) return true;
      parentsWithMore.add(String(r[by]));
      hasMore = true;
      return false;
    });
  });
  return { rows: result.rows, hasMore, parentsWithMore };
}

async function run(ctx: ReadContext, q: ReadQuery, keep: (rows: Row[]) => Row[]): Promise<{ rows: RenderedRow[] }> {
  if (ctx.authz.grant('read', q.projection.subject).kind === 'never') return { rows: [] };
  const observer = ctx.observer ?? unobserved;
  return observer.enforce(q.projection.subject, async (scope) => {
    const statement = buildSelect(ctx, q);
    const rows = keep(ctx.observer ? await scope.query(statement) : await queryRows(ctx.db, statement));
    const out: RenderedRow[] = [];
    for (const row of rows) {
      const rendered = renderRow(ctx, q.projection, row);
      if (rendered) out.push(rendered);
    }
    scope.decided(summarize(q.projection, out));
    return { rows: out };
  });
}

function renderRow(ctx: ReadContext, p: Projection, row: Row): RenderedRow | undefined {
  const attrs: Record<string, unknown> = {};
  for (const a of p.attrs) attrs[a] = row[`a_${a}`];
  const id = String(attrs.id);
  const target = asSubject(p.subject, attrs);
  if (!ctx.authz.ability().can('read', target)) {
    ctx.onFault({ subject: p.subject, recordId: id, kind: 'row' });
    return undefined;
  }
  const cells = new Map<string, Cell>();
  let dek: Buffer | null | undefined;
  const dataKey = (): Buffer | null => {
    if (dek === undefined) dek = unwrapRowKey(ctx, p, row, id);
    return dek;
  };
  for (const plan of p.cells) cells.set(cellKey(plan.field, plan.purpose), renderCell(ctx, plan, row, target, id, dataKey));
  return { id, attrs, cells, extra: row };
}

function flagged(row: Row, key: string | undefined, kind: 'always' | 'never' | 'conditional'): boolean {
  if (key) return row[key] === true;
  return kind === 'always';
}

function renderCell(
  ctx: ReadContext,
  plan: CellPlan,
  row: Row,
  target: ReturnType<typeof asSubject>,
  id: string,
  dataKey: () => Buffer | null,
): Cell {
  const subject = target.__caslSubjectType__ as SubjectName;
  const revealed = flagged(row, plan.revealFlag, plan.revealGrant.kind);
  if (revealed && !ctx.authz.ability(plan.purpose).can('reveal', target, plan.field)) {
    ctx.onFault({ subject, recordId: id, kind: 'reveal', field: plan.field });
    // The SQL value column may hold the raw value: serve nothing rather than guess.
    return { state: 'denied' };
  }
  const readable = flagged(row, plan.readFlag, plan.readGrant.kind);
  if (readable && plan.readFlag && !ctx.authz.ability().can('read', target, plan.field)) {
    ctx.onFault({ subject, recordId: id, kind: 'read', field: plan.field });
    return { state: 'denied' };
  }
  if (revealed && plan.encrypted) {
    const blob = toBuffer(row[plan.valueKey]);
    const key = dataKey();
    if (!blob || !key) return blob ? { state: 'unavailable' } : { state: 'revealed', value: null };
    try {
      return { state: 'revealed', value: decryptField(key, id, plan.encrypted.aad, blob) };
    } catch (e) {
      if (!(e instanceof DecryptionError)) throw e;
      ctx.onFault({ subject, recordId: id, kind: 'decrypt', field: plan.field });
      return { state: 'unavailable' };
    }
  }
  if (revealed) return { state: 'revealed', value: row[plan.valueKey] };
  if (!readable) return { state: 'denied' };
  const value = plan.encrypted ? row[plan.maskedKey!] : row[plan.valueKey];
  return { state: plan.maskable ? 'masked' : 'raw', value };
}

function unwrapRowKey(ctx: ReadContext, p: Projection, row: Row, id: string): Buffer | null {
  if (!p.wrappedKey) return null;
  const wrapped = toBuffer(row[p.wrappedKey.key]);
  const kekId = row[p.wrappedKey.kekId];
  if (!wrapped || typeof kekId !== 'string') return null;
  try {
    return unwrapDataKey(ctx.keyring, id, { kekId, wrapped });
  } catch (e) {
    if (!(e instanceof DecryptionError || e instanceof KeyUnavailableError)) throw e;
    ctx.onFault({ subject: p.subject, recordId: id, kind: 'decrypt' });
    return null;
  }
}
