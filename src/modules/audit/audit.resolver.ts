import { Arg, Ctx, Int, Query, Resolver } from 'type-graphql';
import { auditActions, type AuditAction, type AuditRecord } from '../../audit/record.js';
import { accessSummary, findEvents, trailOf, type AuditFilter } from '../../audit/queries.js';
import { BadUserInputError, ForbiddenError } from '../../errors.js';
import { requestObserver, type Context } from '../../graphql/context.js';
import { decodeCursor, encodeCursor } from '../../graphql/cursor.js';
import { Edge } from '../../graphql/render.js';
import { validatePageSize } from '../common/paging.js';
import { AccessSummaryResult, AuditEvent, AuditEventConnection, AuditEventFilter } from './audit.type.js';

const TRACE_ID = /^[0-9a-f]{32}$/;

function assertAuditor(ctx: Context): void {
  if (!ctx.authz.canEver('read', 'AuditEvent')) throw new ForbiddenError('not permitted to read AuditEvent', { subject: 'AuditEvent' });
}

function toEvent(r: AuditRecord): AuditEvent {
  return { ...r, at: r.at.toISOString(), hash: r.hash.toString('hex') };
}

function date(value: string | undefined, argument: string): Date | undefined {
  if (value === undefined || value === null) return undefined;
  const d = new Date(value);
  if (Number.isNaN(d.getTime()) || value.length > 40) throw new BadUserInputError(`${argument} must be an ISO-8601 date`, { argument });
  return d;
}

/**
 * Audit reads are themselves audited and traced: one enforcement span per read
 * (its records' seqs as record ids), and a record of who looked at the trail
 * and what they asked for.
 */
function auditRead<T>(ctx: Context, reason: string, read: () => Promise<T>, recordsOf: (result: T) => AuditRecord[]): Promise<T> {
  return requestObserver(ctx).enforce('AuditEvent', async (scope) => {
    const result = await read();
    scope.decided([
      {
        subject: 'AuditEvent',
        action: 'audit_read',
        recordIds: recordsOf(result).map((r) => String(r.seq)),
        fields: { raw: [], masked: [], revealed: [], denied: [] },
        purpose: null,
        decision: 'allow',
        reason,
      },
    ]);
    return result;
  });
}

function filterOf(filter: AuditEventFilter | undefined): AuditFilter {
  const out: AuditFilter = {};
  if (!filter) return out;
  if (filter.principalId != null) out.principalId = filter.principalId;
  if (filter.customerId != null) out.customerId = filter.customerId;
  if (filter.action != null) {
    if (!(auditActions as readonly string[]).includes(filter.action)) throw new BadUserInputError('filter.action is not an audit action', { argument: 'filter.action' });
    out.action = filter.action as AuditAction;
  }
  if (filter.decision != null) {
    if (filter.decision !== 'allow' && filter.decision !== 'deny') throw new BadUserInputError('filter.decision must be allow or deny', { argument: 'filter.decision' });
    out.decision = filter.decision;
  }
  const from = date(filter.from, 'filter.from');
  const to = date(filter.to, 'filter.to');
  if (from) out.from = from;
  if (to) out.to = to;
  return out;
}

/** The auditors' interface: only principals whose policy grants `read AuditEvent`. */
@Resolver()
export class AuditResolver {
  @Query(() => [AuditEvent], { description: 'Every audit record of one request (its extensions.traceId), in order.' })
  async auditTrail(@Ctx() ctx: Context, @Arg('traceId', () => String) traceId: string) {
    assertAuditor(ctx);
    if (!TRACE_ID.test(traceId)) throw new BadUserInputError('traceId must be 32 lowercase hex digits', { argument: 'traceId' });
    const records = await auditRead(ctx, 'auditTrail', () => trailOf(ctx.db, traceId), (r) => r);
    return records.map(toEvent);
  }

  @Query(() => AuditEventConnection, { description: 'Audit records, newest first, e.g. who accessed a customer in a period.' })
  async auditEvents(
    @Ctx() ctx: Context,
    @Arg('filter', () => AuditEventFilter, { nullable: true }) filter: AuditEventFilter | undefined,
    @Arg('first', () => Int, { defaultValue: 50 }) first: number,
    @Arg('after', () => String, { nullable: true }) after: string | undefined,
  ) {
    assertAuditor(ctx);
    validatePageSize(first, ctx.maxPageSize);
    const scope = `audit|${ctx.principal.id}|${JSON.stringify(filter ?? null)}`;
    const afterSeq = after ? Number(decodeCursor(ctx.cursorSecret, scope, after).id) : undefined;
    const query = filterOf(filter);
    const page = await auditRead(ctx, 'auditEvents', () => findEvents(ctx.db, query, { first, ...(afterSeq !== undefined ? { afterSeq } : {}) }), (p) => p.records);
    // Each cursor is encrypted (~10 µs): an edge builds its own only if selected (see Edge).
    const cursorOf = (seq: number) => encodeCursor(ctx.cursorSecret, scope, { k: null, id: String(seq) });
    const edges = page.records.map((r) => new Edge(toEvent(r), r.seq, cursorOf));
    const last = page.records.at(-1);
    return { edges, pageInfo: { hasNextPage: page.hasNextPage, endCursor: last ? cursorOf(last.seq) : null } };
  }

  @Query(() => AccessSummaryResult, { description: 'Records read per principal, reveals per purpose, denials, in [from, to).' })
  async accessSummary(@Ctx() ctx: Context, @Arg('from', () => String) from: string, @Arg('to', () => String) to: string) {
    assertAuditor(ctx);
    const [since, until] = [date(from, 'from')!, date(to, 'to')!];
    return auditRead(ctx, 'accessSummary', () => accessSummary(ctx.db, since, until), () => []);
  }
}
