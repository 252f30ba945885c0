import { createHash } from 'node:crypto';
import type { AuditFields } from '../db/schema/audit.js';

export type { AuditFields };

/** The closed set of audited actions; the appender refuses anything else. */
export const auditActions = ['read', 'reveal', 'write', 'export', 'deny', 'audit_read'] as const;
export type AuditAction = (typeof auditActions)[number];

export type AuditDecision = 'allow' | 'deny';

/**
 * One access decision as the enforcement layer reports it. Ids, role names,
 * field names, purposes and reason codes only: never a personal value, never
 * free text typed by a user.
 */
export interface AuditEventInput {
  traceId: string | null;
  spanId: string | null;
  principalId: string;
  roles: string[];
  action: AuditAction;
  subject: string;
  recordIds: string[];
  fields: AuditFields;
  purpose: string | null;
  decision: AuditDecision;
  reason: string | null;
  policyVersion: string;
}

/** An event as chained and stored: its place (seq), time, and link to the previous record. */
export interface AuditRecord extends AuditEventInput {
  seq: number;
  at: Date;
  prevHash: Buffer;
  hash: Buffer;
}

/** What the hash covers: everything but the hashes themselves. */
export type Hashable = AuditEventInput & { seq: number; at: Date };

/** The prev_hash of record 1. */
export const GENESIS_HASH: Buffer = Buffer.alloc(32, 0);

/**
 * A deterministic serialization of a record: JSON of an object built in a
 * fixed key order (JSON.stringify keeps insertion order), arrays in their
 * stored order, time as ISO-8601 UTC with milliseconds. The leading `v`
 * lets a later format change coexist with records hashed under this one.
 */
export function canonical(record: Hashable): string {
  return JSON.stringify({
    v: 1,
    seq: record.seq,
    at: record.at.toISOString(),
    traceId: record.traceId,
    spanId: record.spanId,
    principalId: record.principalId,
    roles: record.roles,
    action: record.action,
    subject: record.subject,
    recordIds: record.recordIds,
    fields: {
      raw: record.fields.raw,
      masked: record.fields.masked,
      revealed: record.fields.revealed,
      denied: record.fields.denied,
    },
    purpose: record.purpose,
    decision: record.decision,
    reason: record.reason,
    policyVersion: record.policyVersion,
  });
}

/** sha-256(prevHash || canonical(record)): the link that makes any edit or reordering visible. */
export function hashRecord(prevHash: Buffer, record: Hashable): Buffer {
  return createHash('sha256').update(prevHash).update(canonical(record), 'utf8').digest();
}

const fieldKinds = ['raw', 'masked', 'revealed', 'denied'] as const;

/**
 * Why an event cannot be stored as is (naming the key, never the value), or
 * null. The appender checks this before queueing, so one malformed event is
 * refused alone instead of failing the whole batch it would have joined.
 */
export function invalidReason(event: AuditEventInput): string | null {
  if (!(auditActions as readonly string[]).includes(event.action)) return 'action: not an audit action';
  if (event.decision !== 'allow' && event.decision !== 'deny') return 'decision: must be allow or deny';
  const required = { principalId: event.principalId, subject: event.subject, policyVersion: event.policyVersion };
  for (const [key, value] of Object.entries(required)) {
    if (typeof value !== 'string' || value === '') return `${key}: must be a non-empty string`;
  }
  const optional = { traceId: event.traceId, spanId: event.spanId, purpose: event.purpose, reason: event.reason };
  for (const [key, value] of Object.entries(optional)) {
    if (value !== null && typeof value !== 'string') return `${key}: must be a string or null`;
  }
  const lists: Record<string, unknown> = { roles: event.roles, recordIds: event.recordIds };
  for (const kind of fieldKinds) lists[`fields.${kind}`] = (event.fields as Partial<AuditFields> | null)?.[kind];
  for (const [key, value] of Object.entries(lists)) {
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string')) return `${key}: must be an array of strings`;
  }
  const texts = [...Object.values(required), ...Object.values(optional), ...Object.values(lists).flat()];
  if (!texts.every((t) => t === null || storable(t as string))) return 'text: NUL or unpaired surrogate';
  return null;
}

/** PostgreSQL text refuses NUL, and an unpaired surrogate would not survive UTF-8: the stored row would no longer hash the same. */
function storable(text: string): boolean {
  return !text.includes('\u0000') && !unpairedSurrogate.test(text);
}

const unpairedSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
