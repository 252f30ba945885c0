import DataLoader from 'dataloader';
import { sql } from 'drizzle-orm';
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
  /** Whether totalCount is selected: each parent's children are counted by a subquery of their own, not paid for otherwise. */
  total: boolean;
  /** Distinguishes loaders of the same field asked with different selections or arguments. */
  signature: string;
}

/**
 * A per-request DataLoader that loads one page of children for many parents
 * in a single policed SELECT (a LATERAL page per parent): no per-row SQL.
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
      where: [],
      orderBy: [],
      extra: [['__k', sql`${spec.sortColumn}::text`]],
      partition: {
        column: spec.parentColumn,
        perParent: args.first,
        orderBy: sql`${spec.sortColumn} DESC, ${spec.idColumn} DESC`,
        ...(after ? { after: sql`(${spec.sortColumn}, ${spec.idColumn}) < (${sql.placeholder('after_k')}::timestamptz, ${sql.placeholder('after_id')}::uuid)` } : {}),
        total: args.total,
      },
      shape: { key: `children|${spec.subject}|${spec.parentColumn.name}|${spec.sortColumn.name}|${spec.idColumn.name}`, values: { parents: [...parentIds], after_k: after?.k, after_id: after?.id } },
    });
    const byParent = new Map<string, RenderedRow[]>();
    for (const row of page.rows) {
      const parent = row.extra.__parent as string;
      const list = byParent.get(parent);
      if (list) list.push(row);
      else byParent.set(parent, [row]);
    }
    const cursorOf = (row: RenderedRow) => encodeCursor(ctx.cursorSecret, scope, { k: row.extra.__k as string, id: row.id });
    return parentIds.map((id) => ({
      rows: byParent.get(id) ?? [],
      cursorOf,
      hasNextPage: page.parentsWithMore.has(id),
      totalCount: args.total ? (page.totals.get(id) ?? 0) : undefined,
    }));
  });
  ctx.loaders.set(key, loader);
  return loader;
}
