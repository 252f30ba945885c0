import DataLoader from 'dataloader';
import { type SQL, sql } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { planProjection, type Requested } from '../../authz/projection.js';
import { readPage, type RenderedRow } from '../../authz/reader.js';
import type { SubjectName } from '../../authz/subjects.js';
import { readContext, type Context } from '../../graphql/context.js';
import { decodeCursor, encodeCursor } from '../../graphql/cursor.js';
import { assertUuid } from '../customer/customer.repository.js';
import { validatePageSize } from './paging.js';

export interface ChildPage {
  rows: RenderedRow[];
  /** Cursors are built lazily (only when selected). */
  cursorOf: (row: RenderedRow) => string;
  hasNextPage: boolean;
  /** The parent's children the caller may see; counted only when asked (undefined otherwise). */
  totalCount: number | undefined;
}

export interface ChildSpec {
  subject: SubjectName;
  parentColumn: PgColumn;
  /** Newest first: the timestamp column of the child rows. */
  sortColumn: PgColumn;
  idColumn: PgColumn;
}

interface ChildArgs {
  first: number;
  after?: string | undefined;
  requested: Requested;
  /** Whether totalCount is selected: the count is a second window over every child of the parents, not paid for otherwise. */
  total: boolean;
  /** Distinguishes loaders of the same field asked with different selections or arguments. */
  signature: string;
}

/**
 * A per-request DataLoader that loads one page of children for many parents
 * in a single policed SELECT (window function per parent): no per-row SQL.
 */
export function childLoader(ctx: Context, spec: ChildSpec, args: ChildArgs): DataLoader<string, ChildPage> {
  const key = `${spec.subject}|${args.signature}`;
  const existing = ctx.loaders.get(key) as DataLoader<string, ChildPage> | undefined;
  if (existing) return existing;
  validatePageSize(args.first, ctx.maxPageSize);
  const scope = `${spec.subject}|${ctx.principal.id}`;
  const after = args.after ? decodeCursor(ctx.cursorSecret, scope, args.after) : undefined;
  if (after) assertUuid(after.id, 'after');
  const projection = planProjection(ctx.authz, spec.subject, args.requested);
  const loader = new DataLoader<string, ChildPage>(async (parentIds) => {
    const page = await readPage(readContext(ctx), {
      projection,
      size: args.first,
      where: [sql`${spec.parentColumn} = ANY(${sql.placeholder('parents')}::uuid[])`],
      orderBy: [],
      extra: [
        ['__parent', sql`${spec.parentColumn}::text`],
        ['__sort', sql`${spec.sortColumn}`],
        ['__k', sql`${spec.sortColumn}::text`],
        ['__id', sql`${spec.idColumn}`],
        ...(args.total ? [['__total', sql`count(*) OVER (PARTITION BY ${spec.parentColumn})`] satisfies [string, SQL]] : []),
      ],
      partition: {
        by: '__parent',
        perParent: args.first,
        orderBy: sql`"__sort" DESC, "__id" DESC`,
        ...(after ? { after: sql`("__sort", "__id") < (${sql.placeholder('after_k')}::timestamptz, ${sql.placeholder('after_id')}::uuid)` } : {}),
      },
      shape: { key: `children|${spec.subject}|${spec.parentColumn.name}|${spec.sortColumn.name}|${spec.idColumn.name}|${after ? 'after' : ''}|${args.total ? 'total' : ''}`, values: { parents: [...parentIds], after_k: after?.k, after_id: after?.id } },
    });
    const byParent = new Map<string, RenderedRow[]>();
    for (const row of page.rows) {
      const parent = row.extra.__parent as string;
      const list = byParent.get(parent);
      if (list) list.push(row);
      else byParent.set(parent, [row]);
    }
    const cursorOf = (row: RenderedRow) => encodeCursor(ctx.cursorSecret, scope, { k: row.extra.__k as string, id: row.id });
    return parentIds.map((id) => pageOf(cursorOf, byParent.get(id) ?? [], page.parentsWithMore.has(id), args.total));
  });
  ctx.loaders.set(key, loader);
  return loader;
}

function pageOf(cursorOf: ChildPage['cursorOf'], mine: RenderedRow[], hasNextPage: boolean, total: boolean): ChildPage {
  return {
    rows: mine,
    cursorOf,
    hasNextPage,
    totalCount: total ? Number(mine[0]?.extra.__total ?? 0) : undefined,
  };
}

