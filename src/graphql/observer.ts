import type { Span } from '@opentelemetry/api';
import type { AccessDecision } from '../authz/decision.js';
import type { ReadObserver } from '../authz/reader.js';
import type { SubjectName } from '../authz/subjects.js';
import type { Db } from '../db/client.js';
import type { Row } from '../db/execute.js';
import { runStatement, type Statement } from '../authz/statements.js';
import { Attr, SpanName } from '../telemetry/names.js';
import { inSpan, type Telemetry } from '../telemetry/tracing.js';

export interface ObservedRequest {
  db: Db;
  dbSystem: 'postgresql';
  telemetry: Telemetry;
  span: Span;
  policyVersion: string;
  decisions: AccessDecision[];
}

/** Runs a statement inside a `db.query` span carrying the SQL text with placeholders (never values). */
export async function tracedQuery(req: ObservedRequest, parent: Span, statement: Statement): Promise<Row[]> {
  if (!parent.isRecording()) return runStatement(req.db, statement);
  const span = req.telemetry.child(SpanName.sql, parent, {
    [Attr.dbSystem]: req.dbSystem,
    [Attr.dbStatement]: statement.text,
  });
  return inSpan(span, () => runStatement(req.db, statement));
}

/** The enforcement span of one policed read, with its decisions as attributes; decisions also go to the audit trail. */
export function readObserver(req: ObservedRequest): ReadObserver {
  return {
    enforce: <T>(subject: SubjectName, run: Parameters<ReadObserver['enforce']>[1]) => {
      const span = req.telemetry.child(SpanName.enforce, req.span, { [Attr.subject]: subject, [Attr.action]: 'read', [Attr.policyVersion]: req.policyVersion });
      return inSpan(span, () =>
        run({
          query: (statement) => tracedQuery(req, span, statement),
          decided: (decisions) => {
            req.decisions.push(...decisions);
            describe(span, decisions);
          },
        }),
      ) as Promise<T>;
    },
  };
}

function describe(span: Span, decisions: AccessDecision[]): void {
  const read = decisions.find((d) => d.action === 'read' || d.action === 'audit_read');
  const revealed = decisions.filter((d) => d.action === 'reveal');
  if (!read) return;
  span.setAttributes({
    [Attr.rowCount]: read.recordIds.length,
    [Attr.recordIds]: read.recordIds,
    [Attr.fieldsRaw]: read.fields.raw,
    [Attr.fieldsMasked]: read.fields.masked,
    [Attr.fieldsRevealed]: read.fields.revealed,
    [Attr.fieldsDenied]: read.fields.denied,
    [Attr.purposes]: [read, ...revealed].map((d) => d.purpose ?? '').filter(Boolean),
    [Attr.decision]: read.fields.denied.length > 0 ? 'partial' : 'allow',
  });
}
