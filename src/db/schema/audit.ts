import { bigint, index, jsonb, pgTable, text, timestamp } from 'drizzle-orm/pg-core';
import { bytea } from './bytea.js';

/** Field names by rendering, as recorded for one access (names only, never values). */
export interface AuditFields {
  raw: string[];
  masked: string[];
  revealed: string[];
  denied: string[];
}

/**
 * The tamper-evident audit trail: one row per access decision, hash-chained
 * (`hash` = sha-256(`prev_hash` || canonical row), see src/audit/record.ts).
 * `seq` is assigned by the appender under an advisory lock, contiguous from 1,
 * so a gap is itself evidence of deletion. Rows hold ids, field names and
 * codes only: no personal value ever lands here. The table is append-only:
 * a trigger refuses UPDATE, DELETE and TRUNCATE (migration audit_grants).
 */
export const auditEvents = pgTable(
  'audit_events',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true, precision: 3 }).notNull(),
    traceId: text('trace_id'),
    spanId: text('span_id'),
    principalId: text('principal_id').notNull(),
    roles: text('roles').array().notNull(),
    action: text('action').notNull(),
    subject: text('subject').notNull(),
    recordIds: text('record_ids').array().notNull(),
    fields: jsonb('fields').$type<AuditFields>().notNull(),
    purpose: text('purpose'),
    decision: text('decision').notNull(),
    reason: text('reason'),
    policyVersion: text('policy_version').notNull(),
    prevHash: bytea('prev_hash').notNull(),
    hash: bytea('hash').notNull(),
  },
  (t) => [
    index('audit_events_trace_idx').on(t.traceId),
    index('audit_events_principal_at_idx').on(t.principalId, t.at),
    // "Who accessed customer X": record_ids @> array[X] uses this index. New ids go to GIN's pending
    // list, which the service merges in the background (migration 0006, AuditLog.mergeIndex), not a commit.
    index('audit_events_record_ids_idx').using('gin', t.recordIds),
    index('audit_events_at_idx').on(t.at),
  ],
);
