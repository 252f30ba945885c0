import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { planProjection, type Requested } from '../../authz/projection.js';
import { allOf, readPage, readRows, rowWhere, type RenderedRow } from '../../authz/reader.js';
import { RequestAuthz } from '../../authz/request-authz.js';
import { subjects } from '../../authz/subjects.js';
import { blindIndex } from '../../crypto/envelope.js';
import { bind, compile, runStatement } from '../../authz/statements.js';
import { customers } from '../../db/schema/index.js';
import { BadUserInputError, ForbiddenError } from '../../errors.js';
import { readContext, type Context } from '../../graphql/context.js';
import { decodeCursor, encodeCursor } from '../../graphql/cursor.js';
import { SortDirection } from '../common/common.types.js';
import { validatePageSize } from '../common/paging.js';
import { CustomerOrderField, type CustomerFilter, type CustomerOrder } from './customer.type.js';
import { isValidEmail, isValidPhone } from './contact-validation.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function assertUuid(id: string, argument = 'id'): void {
  if (!UUID.test(id)) throw new BadUserInputError(`${argument} must be a UUID`, { argument });
}

const plainFilters = ['city', 'province', 'tier', 'segment', 'ownerId', 'name'] as const;

/** Filter predicates: the SQL (values as placeholders `f_<field>`), the values, and the fields used (the shape). */
export interface FilterWhere {
  where: SQL[];
  values: Record<string, unknown>;
  fields: string[];
}

/** The filter as SQL; every field needs `filter` (phone/email: `lookup`) and applies only where that grant holds. */
export function filterWhere(ctx: Context, filter: CustomerFilter | undefined): FilterWhere {
  const out: FilterWhere = { where: [], values: {}, fields: [] };
  if (!filter) return out;
  const refuse: string[] = [];
  const refuseLookup: string[] = [];
  for (const key of plainFilters) {
    const value = filter[key];
    if (value === undefined || value === null) continue;
    if (!ctx.authz.canEver('filter', 'Customer', key)) refuse.push(key);
    const column = subjects.Customer.fields[key].column as PgColumn;
    out.where.push(sql`${column} = ${sql.placeholder(`f_${key}`)}`, RequestAuthz.toSql(ctx.authz.grant('filter', 'Customer', key)));
    out.values[`f_${key}`] = value;
    out.fields.push(key);
  }
  for (const key of ['phone', 'email'] as const) {
    const value = filter[key];
    if (value === undefined || value === null) continue;
    if (!ctx.authz.canEver('lookup', 'Customer', key)) refuseLookup.push(key);
    const valid = key === 'phone' ? isValidPhone(value) : isValidEmail(value);
    if (!valid) throw new BadUserInputError(`filter.${key} is not a valid ${key}`, { argument: `filter.${key}` });
    const column = key === 'phone' ? customers.phoneBidx : customers.emailBidx;
    out.where.push(sql`${column} = ${sql.placeholder(`f_${key}`)}`, RequestAuthz.toSql(ctx.authz.grant('lookup', 'Customer', key)));
    out.values[`f_${key}`] = blindIndex(ctx.keys.blindIndexKey, key, value);
    out.fields.push(key);
  }
  if (refuse.length > 0) throw ForbiddenError.fields('Customer', refuse, 'filter');
  if (refuseLookup.length > 0) throw ForbiddenError.fields('Customer', refuseLookup, 'lookup');
  return out;
}

/** A caller with no rule that could ever show a customer is refused outright (not served an empty list). */
export function assertMayReadCustomers(ctx: Context): void {
  if (!ctx.authz.canEver('read', 'Customer')) throw new ForbiddenError('not permitted to read Customer', { subject: 'Customer' });
}

interface ListArgs {
  first: number;
  after?: string | undefined;
  filter?: CustomerFilter | undefined;
  orderBy?: CustomerOrder | undefined;
}

interface SortPlan {
  field: CustomerOrderField;
  column: PgColumn;
  direction: SortDirection;
  cast: string;
  where: SQL[];
}

function sortPlan(ctx: Context, orderBy: CustomerOrder | undefined): SortPlan {
  const field = orderBy?.field ?? CustomerOrderField.ID;
  const direction = orderBy?.direction ?? SortDirection.ASC;
  const spec = subjects.Customer.fields[field];
  const column = spec.column as PgColumn;
  const cast = spec.type === 'date' ? 'timestamptz' : spec.type === 'uuid' ? 'uuid' : 'text';
  if (field === CustomerOrderField.ID) return { field, column, direction, cast, where: [] };
  if (!ctx.authz.canEver('sort', 'Customer', field)) throw ForbiddenError.fields('Customer', [field], 'sort');
  return { field, column, direction, cast, where: [RequestAuthz.toSql(ctx.authz.grant('sort', 'Customer', field))] };
}

/** Lists the caller's customers: one policed SELECT for the page (and one COUNT only when asked). */
export async function listCustomers(ctx: Context, args: ListArgs, requested: Requested) {
  assertMayReadCustomers(ctx);
  validatePageSize(args.first, ctx.maxPageSize);
  const filters = filterWhere(ctx, args.filter);
  const sort = sortPlan(ctx, args.orderBy);
  const scope = `customers|${ctx.principal.id}|${JSON.stringify(args.orderBy ?? null)}|${JSON.stringify(args.filter ?? null)}`;
  const projection = planProjection(ctx.authz, 'Customer', requested);
  const id = customers.id;
  const keyset: SQL[] = [];
  const values: Record<string, unknown> = { ...filters.values };
  if (args.after) {
    const c = decodeCursor(ctx.cursorSecret, scope, args.after);
    assertUuid(c.id, 'after');
    const op = sort.direction === SortDirection.ASC ? sql`>` : sql`<`;
    keyset.push(
      sort.column === id
        ? sql`${id} ${op} ${sql.placeholder('after_id')}::uuid`
        : sql`(${sort.column}, ${id}) ${op} (${sql.placeholder('after_k')}::${sql.raw(sort.cast)}, ${sql.placeholder('after_id')}::uuid)`,
    );
    Object.assign(values, { after_id: c.id, after_k: c.k });
  }
  const dir = sql.raw(sort.direction === SortDirection.ASC ? 'ASC' : 'DESC');
  const page = await readPage(readContext(ctx), {
    projection,
    where: [...filters.where, ...sort.where, ...keyset],
    orderBy: sort.column === id ? [sql`${id} ${dir}`] : [sql`${sort.column} ${dir}`, sql`${id} ${dir}`],
    size: args.first,
    extra: [['__k', sql`${sort.column}::text`]],
    // Everything above that shapes the SQL; the values are placeholders.
    shape: { key: `customers|${filters.fields.join(',')}|${sort.field}|${sort.direction}|${args.after ? 'after' : ''}`, values },
  });
  // Cursors are encrypted: built only if the client asks for one (see Edge).
  const cursorOf = (row: RenderedRow) => encodeCursor(ctx.cursorSecret, scope, { k: (row.extra.__k as string | null) ?? null, id: row.id });
  const where = [...filters.where, ...sort.where];
  return {
    rows: page.rows,
    cursorOf,
    hasNextPage: page.hasMore,
    totalCount: () => countCustomers(ctx, where, filters.values),
  };
}

export async function countCustomers(ctx: Context, where: SQL[], values: Record<string, unknown> = {}): Promise<number> {
  if (ctx.authz.grantKind('read', 'Customer') === 'never') return 0;
  const conds = allOf([rowWhere(ctx.authz, 'Customer'), ...where]);
  const [row] = await runStatement(ctx.reads, bind(compile(sql`SELECT count(*)::int AS n FROM ${customers} WHERE ${conds}`), values));
  return Number(row?.n ?? 0);
}

/** The id condition of a point read: built once, its value bound per run. */
const BY_ID = sql`${customers.id} = ${sql.placeholder('id')}::uuid`;

/** One customer by id; outside the caller's rows it answers exactly as a missing id (null). */
export async function getCustomer(ctx: Context, id: string, requested: Requested): Promise<RenderedRow | null> {
  assertUuid(id);
  assertMayReadCustomers(ctx);
  const projection = planProjection(ctx.authz, 'Customer', requested);
  const rows = await readRows(readContext(ctx), {
    projection,
    where: [BY_ID],
    orderBy: [],
    limit: 1,
    shape: { key: 'customer|id', values: { id } },
  });
  return rows[0] ?? null;
}
