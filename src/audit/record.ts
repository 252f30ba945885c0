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
 * The table reads its columns from this very text (type audit_canonical_v1).
 */
export function canonical(record: Hashable): string {
  return canonicalText(record.seq, record.at, canonicalBody(record));
}

/**
 * Everything of the canonical text after `at`, as a JSON object: what the
 * event says, known before its place in the chain is. The appender takes it
 * when an event is accepted (a snapshot the caller can no longer change).
 */
export function canonicalBody(event: AuditEventInput): string {
  return JSON.stringify({
    traceId: event.traceId,
    spanId: event.spanId,
    principalId: event.principalId,
    roles: event.roles,
    action: event.action,
    subject: event.subject,
    recordIds: event.recordIds,
    fields: {
      raw: event.fields.raw,
      masked: event.fields.masked,
      revealed: event.fields.revealed,
      denied: event.fields.denied,
    },
    purpose: event.purpose,
    decision: event.decision,
    reason: event.reason,
    policyVersion: event.policyVersion,
  });
}

/** The canonical text of the record at `seq`, `at` whose body is `body` (from canonicalBody). */
export function canonicalText(seq: number, at: Date, body: string): string {
  return `{"v":1,"seq":${seq},"at":"${at.toISOString()}",${body.slice(1)}`;
}

/** sha-256(prevHash || canonical(record)): the link that makes any edit or reordering visible. */
export function hashRecord(prevHash: Buffer, record: Hashable): Buffer {
  return hashText(prevHash, canonical(record));
}

/** sha-256(prevHash || text), text being a record's canonical text. */
export function hashText(prevHash: Buffer, text: string): Buffer {
  return createHash('sha256').update(prevHash).update(text, 'utf8').digest();
}

/**
 * Why an event cannot be stored as is (naming the key, never the value), or
 * null. The appender checks this before queueing, so one malformed event is
 * refused alone instead of failing the whole batch it would have joined.
 */
export function invalidReason(event: AuditEventInput): string | null {
  if (!(auditActions as readonly string[]).includes(event.action)) return 'action: not an audit action';
  if (event.decision !== 'allow' && event.decision !== 'deny') return 'decision: must be allow or deny';
  // One pass over the text: this runs for every event, and a list read's event has a record id per row.
  let unstorable = false;
  for (const key of requiredKeys) {
    const value: unknown = event[key];
    if (typeof value !== 'string' || value === '') return `${key}: must be a non-empty string`;
    unstorable ||= !storable(value);
  }
  for (const key of optionalKeys) {
    const value: unknown = event[key];
    if (value === null) continue;
    if (typeof value !== 'string') return `${key}: must be a string or null`;
    unstorable ||= !storable(value);
  }
  const fields = event.fields as Partial<AuditFields> | null;
  const lists = [
    checkList('roles', event.roles),
    checkList('recordIds', event.recordIds),
    checkList('fields.raw', fields?.raw),
    checkList('fields.masked', fields?.masked),
    checkList('fields.revealed', fields?.revealed),
    checkList('fields.denied', fields?.denied),
  ];
  for (const result of lists) {
    if (typeof result === 'string') return result;
    unstorable ||= !result;
  }
  return unstorable ? 'text: NUL or unpaired surrogate' : null;
}

/** A list's problem, or whether all of its items are storable. */
function checkList(key: string, value: unknown): string | boolean {
  if (!Array.isArray(value)) return `${key}: must be an array of strings`;
  let ok = true;
  for (const item of value as unknown[]) {
    if (typeof item !== 'string') return `${key}: must be an array of strings`;
    ok &&= storable(item);
  }
  return ok;
}

const requiredKeys = ['principalId', 'subject', 'policyVersion'] as const;
const optionalKeys = ['traceId', 'spanId', 'purpose', 'reason'] as const;

/** PostgreSQL text refuses NUL, and an unpaired surrogate would not survive UTF-8: the stored row would no longer hash the same. */
function storable(text: string): boolean {
  // Most text has neither NUL nor any surrogate: one scan settles it.
  if (!suspect.test(text)) return true;
  return !text.includes('\u0000') && !unpairedSurrogate.test(text);
}

const suspect = /[\u0000\uD800-\uDFFF]/;
const unpairedSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
