import { check, index, integer, jsonb, pgEnum, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { sql } from 'drizzle-orm';
import { principals } from './principals.js';

export const exportKind = pgEnum('export_kind', ['dataset', 'customers']);
export const exportStatus = pgEnum('export_status', ['pending', 'approved', 'rejected', 'revoked']);

/**
 * The export approval queue. A request names what would leave (a minimized
 * dataset, or an identified customer list as the requester reads it), why,
 * and how many rows at most; another principal holding `approve` on it turns
 * it into a grant with an expiry and a row cap that counts down as rows leave.
 * `reason` and `decision_reason` are free text typed by people: they stay
 * here and never go into logs, spans or the audit trail.
 */
export const exportRequests = pgTable(
  'export_requests',
  {
    id: uuid('id').primaryKey(),
    kind: exportKind('kind').notNull(),
    /** kind = dataset: the dataset's name in policies/datasets/. */
    dataset: text('dataset'),
    /** kind = customers: the customer filter and the fields, as the requester would query them. */
    query: jsonb('query'),
    purpose: text('purpose').notNull(),
    rowLimit: integer('row_limit').notNull(),
    reason: text('reason').notNull(),
    requestedBy: text('requested_by')
      .notNull()
      .references(() => principals.id),
    /** The requester's department when asked: whose manager may approve. */
    department: text('department'),
    requestedAt: timestamp('requested_at', { withTimezone: true, precision: 3 }).notNull().defaultNow(),
    status: exportStatus('status').notNull().default('pending'),
    decidedBy: text('decided_by').references(() => principals.id),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    decisionReason: text('decision_reason'),
    expiresAt: timestamp('expires_at', { withTimezone: true }),
    rowsExported: integer('rows_exported').notNull().default(0),
    policyVersion: text('policy_version').notNull(),
  },
  (t) => [
    index('export_requests_requester_idx').on(t.requestedBy, t.requestedAt),
    index('export_requests_status_idx').on(t.status, t.requestedAt),
    check('export_requests_rows_within_cap', sql`${t.rowsExported} >= 0 and ${t.rowsExported} <= ${t.rowLimit}`),
    check('export_requests_row_limit_positive', sql`${t.rowLimit} > 0`),
    check('export_requests_no_self_decision', sql`${t.decidedBy} is null or ${t.decidedBy} <> ${t.requestedBy}`),
    check('export_requests_target', sql`(${t.kind} = 'dataset' and ${t.dataset} is not null) or (${t.kind} = 'customers' and ${t.query} is not null)`),
  ],
);
