import { Arg, Ctx, ID, Int, Mutation, Query, Resolver } from 'type-graphql';
import { BadUserInputError } from '../../errors.js';
import type { Context } from '../../graphql/context.js';
import { decodeCursor, encodeCursor } from '../../graphql/cursor.js';
import { validatePageSize } from '../common/paging.js';
import { decideExport, findExport, listExports, requestExport, revokeExport, stateOf, type ExportRow } from './export.service.js';
import { ExportKind, ExportRequest, ExportRequestConnection, ExportState, RequestExportInput } from './export.type.js';

export function toExportRequest(row: ExportRow): ExportRequest {
  const state = stateOf(row) as ExportState;
  return {
    id: row.id,
    kind: row.kind as ExportKind,
    dataset: row.dataset,
    customers: (row.query as Record<string, unknown> | null) ?? null,
    purpose: row.purpose,
    rowLimit: row.rowLimit,
    rowsExported: row.rowsExported,
    state,
    reason: row.reason,
    requestedBy: row.requestedBy,
    requestedAt: row.requestedAt.toISOString(),
    decidedBy: row.decidedBy,
    decidedAt: row.decidedAt?.toISOString() ?? null,
    decisionReason: row.decisionReason,
    expiresAt: row.expiresAt?.toISOString() ?? null,
    downloadPath: state === ExportState.APPROVED ? `/exports/${row.id}/rows` : null,
  };
}

const states = ['pending', 'approved', 'rejected', 'revoked'] as const;

/** The export approval queue: request, decide (never one's own), revoke, and see what one may see of it. */
@Resolver()
export class ExportResolver {
  @Mutation(() => ExportRequest, { description: 'Ask to take data out in bulk; nothing leaves until another principal approves.' })
  async requestExport(@Ctx() ctx: Context, @Arg('input', () => RequestExportInput) input: RequestExportInput) {
    const customers = input.customers ? { filter: { ...(input.customers.filter ?? {}) }, fields: input.customers.fields } : undefined;
    return toExportRequest(await requestExport(ctx, { dataset: input.dataset, customers, purpose: input.purpose, rowLimit: input.rowLimit, reason: input.reason }));
  }

  @Mutation(() => ExportRequest, { description: 'Approve a pending request: a grant valid for expiresInHours, optionally with a lower row cap.' })
  async approveExport(
    @Ctx() ctx: Context,
    @Arg('id', () => ID) id: string,
    @Arg('expiresInHours', () => Int, { defaultValue: 24 }) expiresInHours: number,
    @Arg('rowLimit', () => Int, { nullable: true }) rowLimit: number | undefined,
  ) {
    return toExportRequest(await decideExport(ctx, id, { approve: true, expiresInHours, ...(rowLimit != null ? { rowLimit } : {}) }));
  }

  @Mutation(() => ExportRequest)
  async rejectExport(@Ctx() ctx: Context, @Arg('id', () => ID) id: string, @Arg('reason', () => String) reason: string) {
    return toExportRequest(await decideExport(ctx, id, { approve: false, reason }));
  }

  @Mutation(() => ExportRequest, { description: 'Withdraw an approved grant at once (its approvers, or its holder).' })
  async revokeExport(@Ctx() ctx: Context, @Arg('id', () => ID) id: string, @Arg('reason', () => String) reason: string) {
    return toExportRequest(await revokeExport(ctx, id, reason));
  }

  @Query(() => ExportRequest)
  async exportRequest(@Ctx() ctx: Context, @Arg('id', () => ID) id: string) {
    return toExportRequest(await findExport(ctx, id));
  }

  @Query(() => ExportRequestConnection, { description: 'Export requests the caller may see (own, or to decide), newest first.' })
  async exportRequests(
    @Ctx() ctx: Context,
    @Arg('status', () => String, { nullable: true }) status: string | undefined,
    @Arg('first', () => Int, { defaultValue: 20 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | undefined,
  ) {
    validatePageSize(first, ctx.maxPageSize);
    if (status != null && !(states as readonly string[]).includes(status)) {
      throw new BadUserInputError(`status must be one of ${states.join(', ')}`, { argument: 'status' });
    }
    const scope = `exports|${ctx.principal.id}|${status ?? ''}`;
    const cursor = after ? decodeCursor(ctx.cursorSecret, scope, after) : undefined;
    const before = cursor && cursor.k ? { at: new Date(cursor.k), id: cursor.id } : undefined;
    const page = await listExports(ctx, { status: (status ?? undefined) as ExportRow['status'] | undefined, first, before });
    const last = page.rows.at(-1);
    return {
      nodes: page.rows.map(toExportRequest),
      pageInfo: { hasNextPage: page.hasNextPage, endCursor: last ? encodeCursor(ctx.cursorSecret, scope, { k: last.requestedAt.toISOString(), id: last.id }) : null },
    };
  }
}
