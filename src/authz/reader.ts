import { subject as asSubject, type AnyMongoAbility } from '@casl/ability';
import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { decryptField, DecryptionError, KeyUnavailableError, unwrapDataKey, type Keyring } from '../crypto/envelope.js';
import type { Db } from '../db/client.js';
import { toBuffer, type Row } from '../db/execute.js';
import { customerKeys, customers } from '../db/schema/index.js';
import type { CellPlan, Projection } from './projection.js';
import { summarize, type AccessDecision } from './decision.js';
import { RequestAuthz, type Grant } from './request-authz.js';
import { bind, compile, Lru, runStatement, type Compiled, type Statement } from './statements.js';
import { subjectSpec, type SubjectName } from './subjects.js';

export type Cell =
  | { state: 'raw' | 'masked' | 'revealed'; value: unknown }
  | { state: 'denied' }
  | { state: 'unavailable' };

/** One policed row: its id, the attributes it was re-checked on, and each requested cell already rendered. */
export interface RenderedRow {
  id: string;
  attrs: Record<string, unknown>;
  /** The rendered cells, in the order of `projection.cells` (see cellAt). */
  cells: Cell[];
  extra: Row;
  /** The plan the row was rendered with (its cells in order). */
  projection: Projection;
}

/** The row's cell for a (field, purpose) key (cellKey), if its projection planned one. */
export function cellAt(row: RenderedRow, key: string): Cell | undefined {
  const i = row.projection.cellIndex.get(key);
  return i === undefined ? undefined : row.cells[i];
}

/** Reported when the in-memory re-check disagrees with SQL: the row is dropped or the cell masked. */
export interface EnforcementFault {
  subject: SubjectName;
  recordId: string;
  /** `erased`: a reveal of a customer whose data key was destroyed (crypto-shredded). */
  kind: 'row' | 'read' | 'reveal' | 'decrypt' | 'erased';
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
  query(statement: Statement): Promise<Row[]>;
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
  /** Nested loads: a page per parent (see Partition). */
  partition?: Partition;
  /**
   * Reuse the compiled statement across requests. The caller promises that
   * for this key (with the same projection) where, orderBy, extra and
   * partition are the same SQL, every per-request value in them being a
   * drizzle placeholder (`sql.placeholder(name)`) filled from `values`.
   */
  shape?: { key: string; values: Record<string, unknown> };
}

/**
 * A page of children for each parent id of an array bound as `parents`: one
 * LATERAL subquery per parent, policed as any read, walking its rows in
 * `orderBy` with `LIMIT perParent` (an index on (parent, order) lets
 * PostgreSQL read only those), numbered in `"__rn"`. Result rows carry the parent's id as text
 * in `"__parent"`, and come grouped by parent in `"__rn"` order only in
 * practice: the reader puts them in that order if SQL did not (an outer ORDER
 * BY took about a sixth of the statement's time, S2's orders under pgbench).
 * `orderBy` and `after` are over the table's columns.
 */
export interface Partition {
  /** The child's column holding its parent's id (a uuid). */
  column: PgColumn;
  perParent: number;
  orderBy: SQL;
  /** Keyset: the rows after a cursor. */
  after?: SQL;
  /**
   * Count each parent's children the caller may see (`"__total"`), whatever
   * the page holds; a parent with none on the page still gets a result row,
   * with no child in it (`"__rn"` null).
   */
  total?: boolean;
}

/** Compiled statements per planned projection (which is cached per rules and selection) and query shape. */
const compiledByShape = new WeakMap<Projection, Lru<Compiled>>();
const SHAPES_PER_PROJECTION = 32;

/** The statement of one read: compiled once per shape, bound to this request's values. */
function statementOf(ctx: ReadContext, q: ReadQuery): Statement {
  // Row counts are in the text (literalCount), so the caller's values are all there is to bind.
  if (!q.shape) return bind(compile(buildSelect(ctx, q)), {});
  const { values } = q.shape;
  let cache = compiledByShape.get(q.projection);
  if (!cache) compiledByShape.set(q.projection, (cache = new Lru<Compiled>(SHAPES_PER_PROJECTION)));
  // What buildSelect adds on its own besides the caller's parts.
  const key = `${q.limit ?? '-'}|${q.partition ? `p${q.partition.perParent}` : '-'}${q.partition?.after ? 'a' : '-'}${q.partition?.total ? 't' : '-'}|${q.shape.key}`;
  let compiled = cache.get(key);
  if (!compiled) {
    compiled = compile(buildSelect(ctx, q));
    cache.set(key, compiled);
  }
  return bind(compiled, values);
}

/**
 * A row count written into the statement's text rather than bound. Policed
 * reads run with generic plans (src/db/pool-split.ts `readsPool`), and a generic
 * plan costs `LIMIT $n` as a tenth of the rows: a 51-row page planned as if
 * it were 10,000 rows can tip from walking an index in order to sorting the
 * table. A literal lets it plan for the rows asked. Page sizes are bounded
 * (MAX_PAGE_SIZE), so are the texts.
 */
function literalCount(n: number | undefined): SQL {
  if (n === undefined || !Number.isSafeInteger(n) || n < 0) throw new RangeError('a row count must be a non-negative integer');
  return sql.raw(String(n));
}

/** Builds the policed SELECT: row policy in WHERE, projection in the SELECT list. */
export function buildSelect(ctx: ReadContext, q: ReadQuery): SQL {
  const { projection: p } = q;
  const table = subjectSpec(p.subject).table;
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
  if (q.partition) return partitionedSelect({ from, columns, where: [rowPolicy, ...q.where] }, q.partition);
  const where = allOf([rowPolicy, ...q.where]);
  const order = q.orderBy.length ? sql` ORDER BY ${sql.join(q.orderBy, sql`, `)}` : sql``;
  const limit = q.limit !== undefined ? sql` LIMIT ${literalCount(q.limit)}` : sql``;
  return sql`SELECT ${columns} FROM ${from} WHERE ${where}${order}${limit}`;
}

/** The conditions AND-ed, each in parentheses. */
export function allOf(conditions: SQL[]): SQL {
  return sql.join(conditions.map((w) => sql`(${w})`), sql` AND `);
}

/** The parents' pages of a partitioned read (see Partition). */
function partitionedSelect(base: { from: SQL; columns: SQL; where: SQL[] }, part: Partition): SQL {
  const { from, columns, where } = base;
  const own = sql`${part.column} = "parent"."id"`;
  const keyset = part.after ? [part.after] : [];
  const page = sql`SELECT ${columns}, row_number() OVER (ORDER BY ${part.orderBy}) AS "__rn" FROM ${from} WHERE ${allOf([...where, own, ...keyset])} ORDER BY ${part.orderBy} LIMIT ${literalCount(part.perParent)}`;
  const parents = sql`unnest(${sql.placeholder('parents')}::uuid[]) AS "parent"("id")`;
  if (!part.total) return sql`SELECT "page".*, "parent"."id"::text AS "__parent" FROM ${parents} CROSS JOIN LATERAL (${page}) AS "page"`;
  const count = sql`SELECT count(*)::int AS "n" FROM ${from} WHERE ${allOf([...where, own])}`;
  return sql`SELECT "page".*, "parent"."id"::text AS "__parent", "total"."n" AS "__total" FROM ${parents} CROSS JOIN LATERAL (${count}) AS "total" LEFT JOIN LATERAL (${page}) AS "page" ON true`;
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
  /** Partitioned reads: the parents (`"__parent"`) that have more rows. */
  parentsWithMore: ReadonlySet<string>;
  /** Partitioned reads with `total`: each parent's children the caller may see, by parent. */
  totals: ReadonlyMap<string, number>;
}

/**
 * A page of `size` rows (per parent when partitioned). One more row is fetched
 * to learn whether the page is the last; that row is never rendered, never
 * decrypted and never audited, since the caller does not receive it.
 */
export async function readPage(ctx: ReadContext, q: ReadQuery & { size: number }): Promise<ReadPage> {
  const parentsWithMore = new Set<string>();
  const totals = new Map<string, number>();
  let hasMore = false;
  // Object.assign rather than a spread plus a new key (see statementOf).
  const query: ReadQuery = q.partition ? { ...q, partition: { ...q.partition, perParent: q.size + 1 } } : Object.assign({}, q, { limit: q.size + 1 });
  const result = await run(ctx, query, (rows) => {
    if (!q.partition) {
      hasMore = rows.length > q.size;
      return rows.slice(0, q.size);
    }
    const counted = q.partition.total === true;
    const mine = rows.filter((r) => {
      if (counted) totals.set(String(r.__parent), Number(r.__total));
      // A parent counted with no child on this page (LEFT JOIN).
      if (r.__rn === null || r.__rn === undefined) return false;
      if (Number(r.__rn) <= q.size) return true;
      parentsWithMore.add(String(r.__parent));
      hasMore = true;
      return false;
    });
    return inPageOrder(mine);
  });
  return { rows: result.rows, hasMore, parentsWithMore, totals };
}

/**
 * A partitioned read's rows grouped by parent, each parent's in `"__rn"`
 * order. PostgreSQL returns them so (a nested loop over the parents, each
 * page walked in order), but the statement does not promise it: checked in
 * one pass, sorted only if not.
 */
export function inPageOrder(rows: Row[]): Row[] {
  let ordered = true;
  for (let i = 0; i < rows.length && ordered; i++) {
    const rn = Number(rows[i]!.__rn);
    ordered = rn === 1 || (i > 0 && rows[i - 1]!.__parent === rows[i]!.__parent && Number(rows[i - 1]!.__rn) === rn - 1);
  }
  if (ordered) return rows;
  return [...rows].sort((a, b) => (a.__parent === b.__parent ? Number(a.__rn) - Number(b.__rn) : String(a.__parent) < String(b.__parent) ? -1 : 1));
}

async function run(ctx: ReadContext, q: ReadQuery, keep: (rows: Row[]) => Row[]): Promise<{ rows: RenderedRow[] }> {
  if (ctx.authz.grantKind('read', q.projection.subject) === 'never') return { rows: [] };
  const observer = ctx.observer ?? unobserved;
  return observer.enforce(q.projection.subject, async (scope) => {
    const statement = statementOf(ctx, q);
    const rows = keep(ctx.observer ? await scope.query(statement) : await runStatement(ctx.db, statement));
    const out: RenderedRow[] = [];
    const ability = ctx.authz.ability();
    const decisions = new Map<string, Alike>();
    for (const row of rows) {
      const rendered = renderRow(ctx, ability, q.projection, row, decisions);
      if (rendered) out.push(rendered);
    }
    scope.decided(summarize(q.projection, out));
    return { rows: out };
  });
}

/**
 * Re-checks one row with the caller's ability (whatever SQL said) and renders its cells.
 * `decisions` remembers CASL's answers for the read: rows with the same values of the
 * attributes the conditions read get the same answers (see Projection.decisionAttrs).
 */
function renderRow(ctx: ReadContext, ability: AnyMongoAbility, p: Projection, row: Row, decisions: Map<string, Alike>): RenderedRow | undefined {
  const attrs: Record<string, unknown> = {};
  for (let i = 0; i < p.attrs.length; i++) attrs[p.attrs[i]!] = row[p.attrColumns[i]!];
  const id = String(attrs.id);
  const target = asSubject(p.subject, attrs);
  const key = decisionKey(p, attrs, id);
  let alike = decisions.get(key);
  if (!alike) {
    alike = { row: ability.can('read', target), answers: [] };
    decisions.set(key, alike);
  }
  if (!alike.row) {
    ctx.onFault({ subject: p.subject, recordId: id, kind: 'row' });
    return undefined;
  }
  const cells: Cell[] = [];
  // Plain state rather than closures: this runs for every row.
  const scope: RowScope = { ctx, projection: p, row, target, id, dek: undefined, alike };
  for (const plan of p.cells) cells.push(renderCell(scope, plan));
  return { id, attrs, cells, extra: row, projection: p };
}

/** What rendering one row's cells shares: the row, its CASL subject, its data key once unwrapped, its remembered checks. */
interface RowScope {
  ctx: ReadContext;
  projection: Projection;
  row: Row;
  target: ReturnType<typeof asSubject>;
  id: string;
  dek: Buffer | null | undefined;
  /** CASL's answers for the rows alike (same decision key) of this read. */
  alike: Alike;
}

/** CASL's answers for rows alike: the row's read, and the field checks by slot (CellPlan.readSlot, revealSlot). */
interface Alike {
  row: boolean;
  answers: Array<boolean | undefined>;
}

/**
 * What CASL's answers for a row depend on: the values of the attributes the
 * conditions read, typed (a string "1" and a number 1 are kept apart), or the
 * row's own id when a condition reads the id. The row check's own key is this.
 */
function decisionKey(p: Projection, attrs: Record<string, unknown>, id: string): string {
  if (!p.decisionAttrs) return `#${id}`;
  let key = '';
  for (const a of p.decisionAttrs) {
    key += `${valueKey(attrs[a])}\u0000`;
  }
  return key;
}

/** The row's data key, unwrapped on first use (only a revealed encrypted cell needs it). */
function dataKey(s: RowScope): Buffer | null {
  if (s.dek === undefined) s.dek = unwrapRowKey(s.ctx, s.projection, s.row, s.id);
  return s.dek;
}

function valueKey(v: unknown): string {
  switch (typeof v) {
    case 'string':
      return `s${v}`;
    case 'number':
    case 'bigint':
    case 'boolean':
      return `${typeof v}${v}`;
    case 'undefined':
      return '~';
    case 'object':
      return v === null ? '~' : `${Object.prototype.toString.call(v)}${JSON.stringify(v)}`;
    case 'function':
    case 'symbol':
      // Rows hold neither; a key that never repeats keeps such a row to itself.
      return `x${Math.random()}`;
  }
}

/**
 * ability.can on one row, asked once per distinct rule list and decision key:
 * two cells whose conditional grants have the same key (same action and
 * purpose, same rules in the same order) share a slot in the projection and
 * get the same answer from CASL for rows alike, so it is remembered there.
 */
function can(s: RowScope, action: 'read' | 'reveal', grant: Grant, slot: number | undefined, field: string, purpose: string | undefined): boolean {
  if (grant.kind !== 'conditional' || slot === undefined) return s.ctx.authz.ability(purpose).can(action, s.target, field);
  let allowed = s.alike.answers[slot];
  if (allowed === undefined) {
    allowed = s.ctx.authz.ability(purpose).can(action, s.target, field);
    s.alike.answers[slot] = allowed;
  }
  return allowed;
}

function flagged(row: Row, key: string | undefined, kind: 'always' | 'never' | 'conditional'): boolean {
  if (key) return row[key] === true;
  return kind === 'always';
}

function renderCell(s: RowScope, plan: CellPlan): Cell {
  const { ctx, row, id } = s;
  const subject = s.projection.subject;
  const revealed = flagged(row, plan.revealFlag, plan.revealGrant.kind);
  if (revealed && !can(s, 'reveal', plan.revealGrant, plan.revealSlot, plan.field, plan.purpose)) {
    ctx.onFault({ subject, recordId: id, kind: 'reveal', field: plan.field });
    // The SQL value column may hold the raw value: serve nothing rather than guess.
    return { state: 'denied' };
  }
  const readable = flagged(row, plan.readFlag, plan.readGrant.kind);
  if (readable && plan.readFlag && !can(s, 'read', plan.readGrant, plan.readSlot, plan.field, undefined)) {
    ctx.onFault({ subject, recordId: id, kind: 'read', field: plan.field });
    return { state: 'denied' };
  }
  if (revealed && plan.encrypted) {
    const blob = toBuffer(row[plan.valueKey]);
    const key = dataKey(s);
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
  if (!wrapped || typeof kekId !== 'string') {
    ctx.onFault({ subject: p.subject, recordId: id, kind: 'erased' });
    return null;
  }
  try {
    return unwrapDataKey(ctx.keyring, id, { kekId, wrapped });
  } catch (e) {
    if (!(e instanceof DecryptionError || e instanceof KeyUnavailableError)) throw e;
    ctx.onFault({ subject: p.subject, recordId: id, kind: 'decrypt' });
    return null;
  }
}
