import { randomUUID } from 'node:crypto';
import { subject as tag } from '@casl/ability';
import { and, desc, eq, lt, or, sql, type SQL } from 'drizzle-orm';
import { datasetFor } from '../../authz/dataset/access.js';
import { RequestAuthz } from '../../authz/request-authz.js';
import { subjects } from '../../authz/subjects.js';
import { exportRequests } from '../../db/schema/index.js';
import { BadUserInputError, ConflictError, ForbiddenError } from '../../errors.js';
import type { Context } from '../../graphql/context.js';

export type ExportRow = typeof exportRequests.$inferSelect;
export type ExportState = 'pending' | 'approved' | 'rejected' | 'revoked' | 'expired' | 'exhausted';

/** What an identified export may filter on: list attributes only, never a personal value kept in the queue. */
export const exportFilterKeys = ['city', 'province', 'tier', 'segment', 'ownerId'] as const;
export type ExportFilter = Partial<Record<(typeof exportFilterKeys)[number], string>>;
export interface CustomerExportQuery {
  filter: ExportFilter;
  fields: string[];
}

export const MAX_ROW_LIMIT = 1_000_000;
export const MAX_GRANT_HOURS = 24 * 30;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface RequestExportInput {
  dataset?: string | undefined;
  customers?: CustomerExportQuery | undefined;
  purpose: string;
  rowLimit: number;
  reason: string;
}

/** The state a person sees: an approved grant past its expiry or its cap is no longer usable. */
export function stateOf(row: ExportRow, now = new Date()): ExportState {
  if (row.status !== 'approved') return row.status;
  if (row.expiresAt && row.expiresAt <= now) return 'expired';
  if (row.rowsExported >= row.rowLimit) return 'exhausted';
  return 'approved';
}

/** The attributes policies test (conditions on Export). */
export function exportSubject(row: Pick<ExportRow, 'id' | 'kind' | 'dataset' | 'purpose' | 'requestedBy' | 'department' | 'status'>) {
  return tag('Export', {
    id: row.id,
    kind: row.kind,
    dataset: row.dataset,
    purpose: row.purpose,
    requestedBy: row.requestedBy,
    department: row.department,
    status: row.status,
  });
}

function checkText(value: string, argument: string, min: number, max: number): string {
  const text = value.trim();
  if (text.length < min || text.length > max || /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(text)) {
    throw new BadUserInputError(`${argument} must be ${min}–${max} characters of text`, { argument });
  }
  return text;
}

function checkCustomerQuery(ctx: Context, q: CustomerExportQuery): CustomerExportQuery {
  const filter: ExportFilter = {};
  for (const [key, value] of Object.entries(q.filter ?? {})) {
    if (value === undefined || value === null) continue;
    if (!(exportFilterKeys as readonly string[]).includes(key)) {
      throw new BadUserInputError(`customers.filter.${key} cannot be used in an export (allowed: ${exportFilterKeys.join(', ')})`, { argument: `customers.filter.${key}` });
    }
    if (typeof value !== 'string' || value.length > 100) throw new BadUserInputError(`customers.filter.${key} must be a short string`, { argument: `customers.filter.${key}` });
    if (!ctx.authz.canEver('filter', 'Customer', key)) throw ForbiddenError.fields('Customer', [key], 'filter');
    filter[key as keyof ExportFilter] = value;
  }
  const known = Object.entries(subjects.Customer.fields).filter(([, spec]) => spec.kind === 'scalar').map(([name]) => name);
  const fields = [...new Set(q.fields ?? [])];
  if (fields.length === 0 || fields.length > known.length) throw new BadUserInputError('customers.fields must name the columns to export', { argument: 'customers.fields' });
  const unknown = fields.filter((f) => !known.includes(f));
  if (unknown.length > 0) throw new BadUserInputError(`customers.fields names ${unknown.length} field(s) Customer does not have`, { argument: 'customers.fields' });
  const refused = fields.filter((f) => !ctx.authz.canEver('read', 'Customer', f));
  if (refused.length > 0) throw ForbiddenError.fields('Customer', refused);
  return { filter, fields };
}

/** Files a request in the queue; it grants nothing until another principal approves it. */
export async function requestExport(ctx: Context, input: RequestExportInput): Promise<ExportRow> {
  if ((input.dataset === undefined || input.dataset === null) === (input.customers === undefined || input.customers === null)) {
    throw new BadUserInputError('name exactly one of dataset or customers', { argument: 'input' });
  }
  if (!Number.isInteger(input.rowLimit) || input.rowLimit < 1 || input.rowLimit > MAX_ROW_LIMIT) {
    throw new BadUserInputError(`rowLimit must be between 1 and ${MAX_ROW_LIMIT}`, { argument: 'rowLimit' });
  }
  const reason = checkText(input.reason, 'reason', 10, 500);
  let values: typeof exportRequests.$inferInsert;
  const base = {
    id: randomUUID(),
    purpose: input.purpose,
    rowLimit: input.rowLimit,
    reason,
    requestedBy: ctx.principal.id,
    department: ctx.principal.department,
    policyVersion: ctx.authz.bundle.version,
  };
  if (input.dataset) {
    const def = datasetFor(ctx.authz, input.dataset);
    if (def.purpose !== input.purpose) throw new BadUserInputError(`dataset ${def.name} serves purpose ${def.purpose}`, { argument: 'purpose' });
    values = { ...base, kind: 'dataset', dataset: def.name };
  } else {
    values = { ...base, kind: 'customers', query: checkCustomerQuery(ctx, input.customers!) };
  }
  if (!ctx.authz.ability(input.purpose).can('create', exportSubject({ ...values, dataset: values.dataset ?? null, department: values.department ?? null, status: 'pending' }))) {
    throw new ForbiddenError(`not permitted to request this export`, { subject: 'Export', action: 'create' });
  }
  const [row] = await ctx.db.insert(exportRequests).values(values).returning();
  audit(ctx, row!, 'export:requested');
  return row!;
}

/** One export request the caller may read, or NOT_FOUND (whether it exists elsewhere is not told). */
export async function findExport(ctx: Context, id: string): Promise<ExportRow> {
  if (!UUID.test(id)) throw new BadUserInputError('id must be a UUID', { argument: 'id' });
  const [row] = await ctx.db
    .select()
    .from(exportRequests)
    .where(and(eq(exportRequests.id, id), RequestAuthz.toSql(ctx.authz.grant('read', 'Export'))));
  // Defense in depth: the SQL grant and the in-memory rule must agree.
  if (!row || !ctx.authz.ability().can('read', exportSubject(row))) throw notFound();
  return row;
}

function notFound() {
  return new BadUserInputError('no such export request', { argument: 'id', reason: 'NOT_FOUND' });
}

/** Export requests the caller may read, newest first. */
export async function listExports(ctx: Context, opts: { status?: ExportRow['status'] | undefined; first: number; before?: { at: Date; id: string } | undefined }) {
  if (!ctx.authz.canEver('read', 'Export')) throw new ForbiddenError('not permitted to read Export', { subject: 'Export' });
  const where: SQL[] = [RequestAuthz.toSql(ctx.authz.grant('read', 'Export'))];
  if (opts.status) where.push(eq(exportRequests.status, opts.status));
  if (opts.before) {
    where.push(or(lt(exportRequests.requestedAt, opts.before.at), and(eq(exportRequests.requestedAt, opts.before.at), lt(exportRequests.id, opts.before.id)))!);
  }
  const rows = await ctx.db
    .select()
    .from(exportRequests)
    .where(and(...where))
    .orderBy(desc(exportRequests.requestedAt), desc(exportRequests.id))
    .limit(opts.first + 1);
  const readable = rows.filter((r) => ctx.authz.ability().can('read', exportSubject(r)));
  return { rows: readable.slice(0, opts.first), hasNextPage: rows.length > opts.first };
}

/** Approves or rejects a pending request: only a principal holding `approve` on it, never its requester. */
export async function decideExport(
  ctx: Context,
  id: string,
  decision: { approve: true; expiresInHours: number; rowLimit?: number | undefined } | { approve: false; reason: string },
): Promise<ExportRow> {
  const row = await loadForDecision(ctx, id);
  if (stateOf(row) !== 'pending') throw new ConflictError(`export request is ${stateOf(row)}, not pending`, { reason: 'NOT_PENDING' });
  let update: Partial<typeof exportRequests.$inferInsert>;
  if (decision.approve) {
    if (!Number.isInteger(decision.expiresInHours) || decision.expiresInHours < 1 || decision.expiresInHours > MAX_GRANT_HOURS) {
      throw new BadUserInputError(`expiresInHours must be between 1 and ${MAX_GRANT_HOURS}`, { argument: 'expiresInHours' });
    }
    if (decision.rowLimit !== undefined && (!Number.isInteger(decision.rowLimit) || decision.rowLimit < 1 || decision.rowLimit > row.rowLimit)) {
      throw new BadUserInputError(`rowLimit may only lower the requested ${row.rowLimit}`, { argument: 'rowLimit' });
    }
    update = {
      status: 'approved',
      expiresAt: sql`now() + make_interval(hours => ${decision.expiresInHours})` as unknown as Date,
      ...(decision.rowLimit !== undefined ? { rowLimit: decision.rowLimit } : {}),
    };
  } else {
    update = { status: 'rejected', decisionReason: checkText(decision.reason, 'reason', 3, 500) };
  }
  const [decided] = await ctx.db
    .update(exportRequests)
    .set({ ...update, decidedBy: ctx.principal.id, decidedAt: sql`now()` })
    .where(and(eq(exportRequests.id, row.id), eq(exportRequests.status, 'pending')))
    .returning();
  if (!decided) throw new ConflictError('export request was decided meanwhile', { reason: 'NOT_PENDING' });
  audit(ctx, decided, decision.approve ? 'export:approved' : 'export:rejected');
  return decided;
}

/** Revokes an approved grant at once: its approvers may, and so may its holder (giving it up). */
export async function revokeExport(ctx: Context, id: string, reason: string): Promise<ExportRow> {
  const row = await findExport(ctx, id);
  const own = row.requestedBy === ctx.principal.id;
  if (!own && !ctx.authz.ability(row.purpose).can('approve', exportSubject(row))) {
    throw new ForbiddenError('not permitted to revoke this export', { subject: 'Export', action: 'approve' });
  }
  if (row.status !== 'approved') throw new ConflictError(`export request is ${row.status}, not approved`, { reason: 'NOT_APPROVED' });
  const [revoked] = await ctx.db
    .update(exportRequests)
    .set({ status: 'revoked', decisionReason: checkText(reason, 'reason', 3, 500) })
    .where(and(eq(exportRequests.id, row.id), eq(exportRequests.status, 'approved')))
    .returning();
  if (!revoked) throw new ConflictError('export request changed meanwhile', { reason: 'NOT_APPROVED' });
  audit(ctx, revoked, 'export:revoked');
  return revoked;
}

async function loadForDecision(ctx: Context, id: string): Promise<ExportRow> {
  if (!UUID.test(id)) throw new BadUserInputError('id must be a UUID', { argument: 'id' });
  const [row] = await ctx.db.select().from(exportRequests).where(eq(exportRequests.id, id));
  if (!row) throw notFound();
  const mayApprove = ctx.authz.ability(row.purpose).can('approve', exportSubject(row));
  if (!mayApprove) {
    // A principal who cannot even read it learns nothing of it.
    if (!ctx.authz.ability().can('read', exportSubject(row))) throw notFound();
    throw new ForbiddenError('not permitted to decide this export', { subject: 'Export', action: 'approve' });
  }
  if (row.requestedBy === ctx.principal.id) {
    throw new ForbiddenError('an export cannot be approved or rejected by its own requester', { subject: 'Export', action: 'approve', reason: 'SELF_APPROVAL' });
  }
  return row;
}

function audit(ctx: Context, row: ExportRow, reason: string): void {
  ctx.decisions.push({
    subject: 'Export',
    action: 'write',
    recordIds: [row.id],
    fields: { raw: [], masked: [], revealed: [], denied: [] },
    purpose: row.purpose,
    decision: 'allow',
    reason,
  });
}
