import type { ApolloServerPlugin, GraphQLRequestContextWillSendResponse } from '@apollo/server';
import { Kind, print, visit, type DocumentNode } from 'graphql';
import type { AccessDecision } from '../authz/decision.js';
import type { AuditEventInput } from '../audit/record.js';
import type { AppendTiming } from '../audit/store.js';
import { subjectNames } from '../authz/subjects.js';
import type { Context } from '../graphql/context.js';
import type { Metrics } from './metrics.js';
import { SpanStatusCode } from '@opentelemetry/api';
import { Attr } from '../telemetry/names.js';

/** Where audit records go; AuditLog in strict mode, nothing when AUDIT_MODE=off (benchmarks only). */
export interface AuditSink {
  append(events: AuditEventInput[], timing?: AppendTiming): Promise<unknown>;
}

/** Apollo hands the same parsed DocumentNode to every request with the same query text (its document cache). */
const redactedCache = new WeakMap<DocumentNode, string>();

/** The document as text with every literal replaced by `?`: arguments may carry personal values. */
export function redactedDocument(document: DocumentNode): string {
  let text = redactedCache.get(document);
  if (text === undefined) {
    text = redact(document);
    redactedCache.set(document, text);
  }
  return text;
}

function redact(document: DocumentNode): string {
  const redacted = visit(document, {
    [Kind.STRING]: () => ({ kind: Kind.STRING, value: '?' }),
    [Kind.INT]: () => ({ kind: Kind.INT, value: '0' }),
    [Kind.FLOAT]: () => ({ kind: Kind.FLOAT, value: '0' }),
  });
  return print(redacted).replace(/\s+/g, ' ').slice(0, 4096);
}

/** Refusals reported by errors (FORBIDDEN with subject and fields) become deny decisions. */
function denials(ctx: GraphQLRequestContextWillSendResponse<Context>): AccessDecision[] {
  const body = ctx.response.body;
  const errors = body.kind === 'single' ? (body.singleResult.errors ?? []) : [];
  const out: AccessDecision[] = [];
  for (const e of errors) {
    const ext = e.extensions ?? {};
    if (ext.code !== 'FORBIDDEN') continue;
    const fields = Array.isArray(ext.fields) ? ext.fields.map(String) : [];
    out.push({
      subject: subjectNames.find((s) => s === ext.subject) ?? 'Customer',
      action: 'deny',
      recordIds: [],
      fields: { raw: [], masked: [], revealed: [], denied: fields },
      purpose: null,
      decision: 'deny',
      reason: typeof ext.action === 'string' ? `not permitted: ${ext.action}` : 'not permitted',
    });
  }
  return out;
}

export function toEvents(ctx: Context, decisions: AccessDecision[]): AuditEventInput[] {
  const spanContext = ctx.span.spanContext();
  return decisions.map((d) => ({
    traceId: spanContext.traceId,
    spanId: spanContext.spanId,
    principalId: ctx.principal.id,
    roles: ctx.principal.roles,
    action: d.action,
    subject: d.subject,
    recordIds: d.recordIds,
    fields: d.fields,
    purpose: d.purpose,
    decision: d.decision,
    reason: d.reason,
    policyVersion: ctx.authz.bundle.version,
  }));
}

/**
 * Appends a request's audit records and notes them on its operation span: how
 * many so far, how long they waited for their group commits and, of that,
 * how long the groups' writes took (a failed append marks the span). No span
 * of its own, so a request has one span per policed read and statement, plus
 * the operation, whatever the audit does. The wait, on every audited
 * request's path, also goes to `custos_audit_commit_wait_seconds`.
 */
export async function appendAudited(audit: AuditSink, metrics: Metrics, ctx: Context, decisions: AccessDecision[]): Promise<void> {
  const started = performance.now();
  const timing: AppendTiming = { flushMs: 0 };
  try {
    await audit.append(toEvents(ctx, decisions), timing);
  } catch (e) {
    metrics.auditWait.observe({ outcome: 'failed' }, (performance.now() - started) / 1000);
    ctx.span.setStatus({ code: SpanStatusCode.ERROR, message: 'audit append failed' });
    throw e;
  }
  const waited = performance.now() - started;
  metrics.auditWait.observe({ outcome: 'committed' }, waited / 1000);
  ctx.audit.records += decisions.length;
  ctx.audit.commitMs += waited;
  ctx.audit.flushMs += timing.flushMs;
  ctx.span.setAttributes({ [Attr.auditRecords]: ctx.audit.records, [Attr.auditCommitMs]: tenths(ctx.audit.commitMs), [Attr.auditFlushMs]: tenths(ctx.audit.flushMs) });
}

const tenths = (ms: number) => Math.round(ms * 10) / 10;

/**
 * Per request: names the operation span, records refusals, starts the
 * audit append (the handler holds the response until it is committed), and
 * hands out the trace id.
 */
export function requestPlugin(opts: { audit: AuditSink | null; metrics: Metrics }): ApolloServerPlugin<Context> {
  return {
    // eslint-disable-next-line @typescript-eslint/require-await
    async requestDidStart() {
      return {
        // eslint-disable-next-line @typescript-eslint/require-await
        async didResolveOperation({ contextValue, operation, operationName, document }) {
          contextValue.span.setAttributes({
            [Attr.operationType]: operation?.operation ?? 'unknown',
            [Attr.operationName]: operationName ?? '',
            [Attr.document]: redactedDocument(document),
          });
        },
        // eslint-disable-next-line @typescript-eslint/require-await
        async willSendResponse(ctx) {
          const { contextValue, response } = ctx;
          // A request refused before a context existed (authentication) has no span.
          if (!contextValue?.span) return;
          const decisions = [...contextValue.decisions, ...denials(ctx)];
          const purposes = [...new Set(decisions.map((d) => d.purpose).filter((p): p is string => p !== null))];
          if (purposes.length > 0) contextValue.span.setAttribute(Attr.purposes, purposes);
          for (const d of decisions) opts.metrics.decisions.inc({ subject: d.subject, action: d.action, decision: d.decision });
          if (contextValue.faults.length > 0) opts.metrics.faults.inc(contextValue.faults.length);
          if (opts.audit && decisions.length > 0) {
            // Started here, awaited by the HTTP handler once the response is serialized: the
            // result's object tree is not held while the group commit runs (strict: no record, no data).
            const audited = appendAudited(opts.audit, opts.metrics, contextValue, decisions);
            // Whoever awaits it sees the failure; a request abandoned at its deadline must not leave it unhandled.
            audited.catch(() => undefined);
            contextValue.audit.committed = audited;
          }
          const traceId = contextValue.span.spanContext().traceId;
          if (response.body.kind === 'single') {
            response.body.singleResult.extensions = { ...response.body.singleResult.extensions, traceId };
          }
        },
      };
    },
  };
}
