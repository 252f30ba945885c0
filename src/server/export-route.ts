import type { IncomingMessage, ServerResponse } from 'node:http';
import { GraphQLError } from 'graphql';
import { sql } from 'drizzle-orm';
import { Authenticator } from '../auth/authenticate.js';
import { assertSamePlan, datasetFor } from '../authz/dataset/access.js';
import { DatasetReader, datasetDecision, type RunQuery } from '../authz/dataset/reader.js';
import type { AccessDecision } from '../authz/decision.js';
import { planProjection, cellKey, type Requested } from '../authz/projection.js';
import { cellAt, readPage } from '../authz/reader.js';
import { bind, compile } from '../authz/statements.js';
import { customers } from '../db/schema/index.js';
import { queryRows } from '../db/execute.js';
import { BadUserInputError, ForbiddenError, ServiceUnavailableError } from '../errors.js';
import { readContext, requestObserver, type Context } from '../graphql/context.js';
import { decodeCursor, encodeCursor } from '../graphql/cursor.js';
import { filterWhere } from '../modules/customer/customer.repository.js';
import { exportSubject, findExport, stateOf, type CustomerExportQuery, type ExportRow } from '../modules/export/export.service.js';
import { Attr } from '../telemetry/names.js';
import { requestContext, sendJson, type HandlerDeps } from './graphql-handler.js';
import { databaseUnavailable } from './format-error.js';
import { appendAudited } from './request-plugin.js';

/** Rows per policed read, per reservation on the grant and per audit record. */
const BATCH = 1_000;
export const MAX_EXPORT_PAGE = 10_000;
const PATH = /^\/exports\/([0-9a-fA-F-]{36})\/rows$/;

type Values = Record<string, unknown>;

/** Rows read from a source, in keyset order; `ids[i]` is the internal position of `rows[i]`. */
interface Batch {
  rows: Values[];
  ids: string[];
  /** Position after everything read (rows withheld by the source included). */
  lastId: string | null;
  done: boolean;
  /** The audit decisions for the first `count` rows, as they leave. */
  decisions(count: number): AccessDecision[];
}

/** A dataset or an identified customer list, read batch by batch as the grant holder may read it. */
interface Source {
  columns: string[];
  /** What a cursor must still match (a dataset's release plan); null for customer lists. */
  position: string | null;
  read(after: string | null, limit: number): Promise<Batch>;
}

/**
 * GET /exports/<grant>/rows?format=ndjson|csv[&limit=N&after=CURSOR]: the one
 * way bulk data leaves. Only the holder of an approved, unexpired grant with
 * rows left may pull. Every batch is reserved against the grant's cap and
 * audited before it is written, and written with backpressure, so memory
 * stays bounded whatever the size. With `limit`: one page, its resume cursor
 * in `x-export-next` and `x-export-complete`. Without: the whole remainder, and a trailer
 * `x-export-complete` saying whether it reached the end (false: the grant ran out).
 */
export function createExportRoute(deps: HandlerDeps) {
  const auth = new Authenticator(deps.db.db, deps.config.auth);
  const { telemetry, logger, metrics } = deps;

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const span = telemetry.startOperation(telemetry.parentFrom(req.headers));
    span.setAttribute(Attr.operationType, 'export');
    let sent = 0;
    try {
      if (req.method !== 'GET') return refuse(res, new BadUserInputError('use GET'), 405);
      const id = PATH.exec(url.pathname)?.[1]?.toLowerCase();
      if (!id) return sendJson(res, 404, { errors: [{ message: 'not found', extensions: { code: 'NOT_FOUND' } }] });
      const format = url.searchParams.get('format') ?? (String(req.headers.accept ?? '').includes('text/csv') ? 'csv' : 'ndjson');
      if (format !== 'ndjson' && format !== 'csv') return refuse(res, new BadUserInputError('format must be ndjson or csv', { argument: 'format' }));
      const limitParam = url.searchParams.get('limit');
      const limit = limitParam === null ? null : Number(limitParam);
      if (limit !== null && (!Number.isInteger(limit) || limit < 1 || limit > MAX_EXPORT_PAGE)) {
        return refuse(res, new BadUserInputError(`limit must be between 1 and ${MAX_EXPORT_PAGE}`, { argument: 'limit' }));
      }
      const principal = await auth.authenticate(req.headers.authorization);
      span.setAttributes({ [Attr.principal]: telemetry.pseudonym(principal.id), [Attr.roles]: principal.roles, [Attr.policyVersion]: deps.bundle.version });
      const ctx = requestContext(deps, principal, span);
      const grant = await usableGrant(ctx, id);
      const scope = `export|${grant.id}|${format}`;
      const afterParam = url.searchParams.get('after');
      const cursor = afterParam ? decodeCursor(ctx.cursorSecret, scope, afterParam) : undefined;
      const source = grant.kind === 'dataset' ? await datasetSource(ctx, grant, cursor?.k ?? null) : customerSource(ctx, grant);
      const pageMode = limit !== null;
      const wanted = limit ?? Number.POSITIVE_INFINITY;
      let after = cursor?.id ?? null;
      let complete = false;
      /** Rows the grant still allows, as the last reservation left it (unknown until one ran). */
      let remaining: number | undefined;
      const out: string[] = [];
      if (format === 'csv' && !cursor) out.push(csvLine(source.columns));
      const start = () => {
        if (res.headersSent) return;
        res.setHeader('content-type', format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8');
        res.setHeader('cache-control', 'no-store');
        res.setHeader('x-trace-id', span.spanContext().traceId);
        if (!pageMode) res.setHeader('trailer', 'x-export-complete');
        res.writeHead(200);
      };
      while (sent < wanted) {
        const batch = await source.read(after, Math.min(BATCH, wanted - sent));
        let granted = batch.rows.length;
        if (granted > 0) {
          const reserved = await reserve(ctx, grant.id, granted);
          granted = reserved.granted;
          remaining = reserved.remaining ?? remaining;
        }
        if (granted === 0 && batch.rows.length > 0) {
          if (sent === 0) throw grantRefusal(await findExport(ctx, grant.id));
          break; // the grant ran out mid-way: what was sent stands, the next request is refused with the reason
        }
        if (granted > 0) {
          await appendAudit(ctx, deps, [...batch.decisions(granted), ...drainFaults(ctx)]);
          for (const row of batch.rows.slice(0, granted)) out.push(format === 'csv' ? csvLine(source.columns.map((c) => row[c])) : `${JSON.stringify(row)}\n`);
          sent += granted;
          metrics.exportedRows.inc({ kind: grant.kind }, granted);
        }
        if (granted < batch.rows.length) {
          after = batch.ids[granted - 1]!;
          break;
        }
        after = batch.lastId;
        if (batch.done) {
          complete = true;
          break;
        }
        if (!pageMode && out.length > 0) {
          start();
          if (!res.write(out.join(''))) await drained(res);
          out.length = 0;
        }
      }
      if (pageMode) {
        remaining ??= await remainingOf(ctx, grant.id);
        res.setHeader('x-export-rows', String(sent));
        res.setHeader('x-export-remaining', String(remaining));
        res.setHeader('x-export-complete', String(complete));
        // Where the data goes on, the cursor too, even at the cap: the next page then says GRANT_EXHAUSTED rather than looking complete.
        if (!complete && after !== null) res.setHeader('x-export-next', encodeCursor(ctx.cursorSecret, scope, { k: source.position, id: after }));
        start();
        res.end(out.join(''));
      } else {
        start();
        if (out.length > 0) res.write(out.join(''));
        res.addTrailers({ 'x-export-complete': String(complete) });
        res.end();
      }
      span.setAttribute(Attr.outcome, 'ok');
      logger.info({ traceId: span.spanContext().traceId, grant: grant.id, rows: sent, complete }, 'export');
    } catch (e) {
      span.setAttribute(Attr.outcome, 'refused');
      if (res.headersSent) {
        // Mid-stream the body cannot carry an error any more: an unterminated chunked body tells the client.
        logger.warn({ err: { name: (e as Error)?.name }, rows: sent }, 'export aborted');
        res.destroy();
        return;
      }
      refuse(res, e);
    } finally {
      span.end();
    }
  };
  return { handle, matches: (pathname: string) => pathname.startsWith('/exports/') };
}

/** The grant, if the caller holds it and it may still be used; otherwise a refusal naming why. */
async function usableGrant(ctx: Context, id: string): Promise<ExportRow> {
  const grant = await findExport(ctx, id);
  if (!ctx.authz.ability(grant.purpose).can('export', exportSubject(grant)) || grant.requestedBy !== ctx.principal.id) {
    throw new ForbiddenError('only the holder of this grant may use it', { subject: 'Export', action: 'export', reason: 'NOT_HOLDER' });
  }
  if (stateOf(grant) !== 'approved') throw grantRefusal(grant);
  return grant;
}

function grantRefusal(grant: ExportRow): ForbiddenError {
  const state = stateOf(grant);
  return new ForbiddenError(`export grant is ${state}`, { subject: 'Export', action: 'export', reason: `GRANT_${state.toUpperCase()}` });
}

/** Reserves up to `n` rows of the grant's cap in one statement: how many were granted (0: unusable) and what is left. */
async function reserve(ctx: Context, id: string, n: number): Promise<{ granted: number; remaining: number | undefined }> {
  const rows = await queryRows(
    ctx.db,
    sql`with cur as (
          select id, rows_exported from export_requests
          where id = ${id}::uuid and status = 'approved' and expires_at > now() and rows_exported < row_limit
          for update)
        update export_requests e set rows_exported = least(e.row_limit, e.rows_exported + ${n}::int)
        from cur where e.id = cur.id
        returning e.rows_exported - cur.rows_exported as granted, e.row_limit - e.rows_exported as remaining`,
  );
  const row = rows[0];
  return row ? { granted: Number(row.granted), remaining: Number(row.remaining) } : { granted: 0, remaining: undefined };
}

async function remainingOf(ctx: Context, id: string): Promise<number> {
  const rows = await queryRows(ctx.db, sql`select row_limit - rows_exported as remaining from export_requests where id = ${id}::uuid`);
  return Number(rows[0]?.remaining ?? 0);
}

/** A batch leaves only once its audit records are committed (strict mode). */
async function appendAudit(ctx: Context, deps: HandlerDeps, decisions: AccessDecision[]): Promise<void> {
  if (!deps.audit || decisions.length === 0) return;
  try {
    await appendAudited(deps.audit, deps.metrics, ctx, decisions);
  } catch {
    throw new ServiceUnavailableError('audit store unavailable: nothing was exported');
  }
}

/**
 * Enforcement faults of the last read (the reader reports them as deny
 * decisions); its read decisions are dropped, since the export decision of
 * the batch stands for them (same rows, same fields).
 */
function drainFaults(ctx: Context): AccessDecision[] {
  const faults = ctx.decisions.filter((d) => d.action === 'deny');
  ctx.decisions.length = 0;
  return faults;
}

async function datasetSource(ctx: Context, grant: ExportRow, planned: string | null): Promise<Source> {
  if (!grant.dataset || !ctx.authz.bundle.datasets.has(grant.dataset)) {
    throw new ForbiddenError('the dataset of this grant is no longer in the policy bundle', { subject: 'Export', action: 'export', reason: 'DATASET_REMOVED' });
  }
  // The holder must still be allowed to read the dataset: a grant does not outlive the policy that allowed it.
  const def = datasetFor(ctx.authz, grant.dataset);
  const reader = new DatasetReader(def, ctx.pseudonymKey);
  const observer = requestObserver(ctx);
  const enforced = <T>(run: (query: RunQuery) => Promise<T>) =>
    observer.enforce('Dataset', (scope) => run((statement) => scope.query(bind(compile(statement), {}))));
  const plan = await enforced((query) => reader.plan(query));
  if (planned !== null) assertSamePlan(plan, planned);
  return {
    columns: def.columns.map((c) => c.name),
    position: plan.fingerprint,
    read: async (after, limit) => {
      const page = await enforced((query) => reader.page(query, plan, { afterId: after, limit }));
      return {
        rows: page.rows,
        ids: page.customerIds,
        lastId: page.lastId,
        done: page.done,
        decisions: (count) => [datasetDecision(def, { customerIds: page.customerIds.slice(0, count) }, 'export', `grant:${grant.id}`)],
      };
    },
  };
}

function customerSource(ctx: Context, grant: ExportRow): Source {
  const query = grant.query as CustomerExportQuery;
  const requested: Requested = new Map(query.fields.map((f) => [f, new Set([undefined])]));
  // The holder's current policy decides rows, fields and masking, exactly as for their own reads.
  const projection = planProjection(ctx.authz, 'Customer', requested);
  const filters = filterWhere(ctx, query.filter);
  const readCtx = readContext(ctx);
  return {
    columns: query.fields,
    position: null,
    read: async (after, limit) => {
      const where = [...filters.where];
      const values: Record<string, unknown> = { ...filters.values };
      if (after !== null) {
        where.push(sql`${customers.id} > ${sql.placeholder('after_id')}::uuid`);
        values.after_id = after;
      }
      const page = await readPage(readCtx, {
        projection,
        where,
        orderBy: [sql`${customers.id} asc`],
        size: limit,
        shape: { key: `export|${filters.fields.join(',')}|${after === null ? '' : 'after'}`, values },
      });
      const fields = { raw: new Set<string>(), masked: new Set<string>(), revealed: new Set<string>(), denied: new Set<string>() };
      const rows = page.rows.map((row) => {
        const out: Values = {};
        for (const field of query.fields) {
          const cell = cellAt(row, cellKey(field, undefined));
          if (cell && (cell.state === 'raw' || cell.state === 'masked' || cell.state === 'revealed')) {
            out[field] = cell.value;
            fields[cell.state].add(field);
          } else {
            out[field] = null;
            fields.denied.add(field);
          }
        }
        return out;
      });
      const ids = page.rows.map((r) => r.id);
      const sorted = (s: Set<string>) => [...s].sort();
      return {
        rows,
        ids,
        lastId: ids.at(-1) ?? after,
        done: !page.hasMore,
        decisions: (count) => [
          {
            subject: 'Customer',
            action: 'export',
            recordIds: ids.slice(0, count),
            fields: { raw: sorted(fields.raw), masked: sorted(fields.masked), revealed: sorted(fields.revealed), denied: sorted(fields.denied) },
            purpose: grant.purpose,
            decision: 'allow',
            reason: `grant:${grant.id}`,
          },
        ],
      };
    },
  };
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', closed);
      resolve();
    };
    const closed = () => {
      res.off('drain', done);
      reject(new Error('client went away'));
    };
    res.once('drain', done);
    res.once('close', closed);
  });
}

/** One CSV record (RFC 4180), cells that a spreadsheet would run as a formula defused with a leading quote. */
export function csvLine(cells: unknown[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}

function csvCell(value: unknown): string {
  if (value === null || value === undefined) return '';
  let text: string;
  if (typeof value === 'string') text = value;
  else if (value instanceof Date) text = value.toISOString();
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else text = JSON.stringify(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

const statusOf: Record<string, number> = {
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  BAD_USER_INPUT: 400,
  CONFLICT: 409,
  SERVICE_UNAVAILABLE: 503,
};

function refuse(res: ServerResponse, e: unknown, status?: number): void {
  if (e instanceof GraphQLError && typeof e.extensions.code === 'string' && e.extensions.code in statusOf) {
    const { http: _http, ...extensions } = e.extensions as Record<string, unknown>;
    const notFound = extensions.reason === 'NOT_FOUND';
    return sendJson(res, status ?? (notFound ? 404 : statusOf[e.extensions.code]!), { errors: [{ message: e.message, extensions }] });
  }
  if (databaseUnavailable(e)) return refuse(res, new ServiceUnavailableError());
  throw e;
}
