import type { PgColumn, PgTable } from 'drizzle-orm/pg-core';
import { auditEvents, customers, exportRequests, interactions, orders, principals } from '../db/schema/index.js';

/**
 * The closed set of policed subjects and their fields, shared by the policy
 * loader (validation), the condition translator (field → column) and the
 * enforcement layer. A field a policy names must be listed here; a condition
 * may only use a field with `column` (encrypted values cannot be compared).
 */
export type ValueType = 'string' | 'number' | 'date' | 'uuid' | 'string[]';

export interface ScalarField {
  kind: 'scalar';
  type: ValueType;
  /** Plain column usable in conditions, filters and orderings; absent for encrypted fields. */
  column?: PgColumn;
}

export type SubjectName = 'Customer' | 'Order' | 'Interaction' | 'Principal' | 'AuditEvent' | 'Export' | 'Dataset';

export interface RelationField {
  kind: 'relation';
  subject: SubjectName;
  /** many: a connection of child rows; one: the parent row. */
  cardinality: 'one' | 'many';
  /** Column on this subject's table (one) or the child table (many) that joins. */
  localColumn: PgColumn;
  foreignColumn: PgColumn;
}

export type FieldSpec = ScalarField | RelationField;

export interface SubjectSpec {
  table: PgTable;
  idColumn: PgColumn;
  fields: Record<string, FieldSpec>;
}

/**
 * A subject decided in memory only (it has no rows in a table of its own):
 * its conditions may use any listed field, and the SQL translator refuses it.
 */
export interface MemorySubjectSpec {
  memoryOnly: true;
  fields: Record<string, ScalarField>;
}

const s = (type: ValueType, column?: PgColumn): ScalarField => (column ? { kind: 'scalar', type, column } : { kind: 'scalar', type });

export const subjects = {
  Customer: {
    table: customers,
    idColumn: customers.id,
    fields: {
      id: s('uuid', customers.id),
      name: s('string', customers.name),
      phone: s('string'),
      email: s('string'),
      address: s('string'),
      province: s('string', customers.province),
      city: s('string', customers.city),
      idNumber: s('string'),
      birthDate: s('string'),
      gender: s('string', customers.gender),
      tier: s('string', customers.tier),
      segment: s('string', customers.segment),
      ownerId: s('string', customers.ownerId),
      department: s('string', customers.department),
      createdAt: s('date', customers.createdAt),
      updatedAt: s('date', customers.updatedAt),
      orders: { kind: 'relation', subject: 'Order', cardinality: 'many', localColumn: customers.id, foreignColumn: orders.customerId },
      interactions: {
        kind: 'relation',
        subject: 'Interaction',
        cardinality: 'many',
        localColumn: customers.id,
        foreignColumn: interactions.customerId,
      },
    },
  },
  Order: {
    table: orders,
    idColumn: orders.id,
    fields: {
      id: s('uuid', orders.id),
      customerId: s('uuid', orders.customerId),
      amount: s('number', orders.amount),
      currency: s('string', orders.currency),
      product: s('string', orders.product),
      channel: s('string', orders.channel),
      status: s('string', orders.status),
      placedAt: s('date', orders.placedAt),
      customer: { kind: 'relation', subject: 'Customer', cardinality: 'one', localColumn: orders.customerId, foreignColumn: customers.id },
    },
  },
  Interaction: {
    table: interactions,
    idColumn: interactions.id,
    fields: {
      id: s('uuid', interactions.id),
      customerId: s('uuid', interactions.customerId),
      principalId: s('string', interactions.principalId),
      channel: s('string', interactions.channel),
      summary: s('string', interactions.summary),
      occurredAt: s('date', interactions.occurredAt),
      customer: {
        kind: 'relation',
        subject: 'Customer',
        cardinality: 'one',
        localColumn: interactions.customerId,
        foreignColumn: customers.id,
      },
    },
  },
  Principal: {
    table: principals,
    idColumn: principals.id,
    fields: {
      id: s('string', principals.id),
      displayName: s('string', principals.displayName),
      roles: s('string[]', principals.roles),
      department: s('string', principals.department),
      region: s('string', principals.region),
      status: s('string', principals.status),
    },
  },
  /** The audit trail: ids, field names and codes only, so auditors see no customer value. */
  AuditEvent: {
    table: auditEvents,
    idColumn: auditEvents.seq,
    fields: {
      seq: s('number', auditEvents.seq),
      at: s('date', auditEvents.at),
      traceId: s('string', auditEvents.traceId),
      spanId: s('string', auditEvents.spanId),
      principalId: s('string', auditEvents.principalId),
      roles: s('string[]', auditEvents.roles),
      action: s('string', auditEvents.action),
      subject: s('string', auditEvents.subject),
      recordIds: s('string[]', auditEvents.recordIds),
      fields: s('string'),
      purpose: s('string', auditEvents.purpose),
      decision: s('string', auditEvents.decision),
      reason: s('string', auditEvents.reason),
      policyVersion: s('string', auditEvents.policyVersion),
      hash: s('string'),
    },
  },
  /** Requests to take data out in bulk, and the grants they become once approved. */
  Export: {
    table: exportRequests,
    idColumn: exportRequests.id,
    fields: {
      id: s('uuid', exportRequests.id),
      kind: s('string', exportRequests.kind),
      dataset: s('string', exportRequests.dataset),
      purpose: s('string', exportRequests.purpose),
      rowLimit: s('number', exportRequests.rowLimit),
      requestedBy: s('string', exportRequests.requestedBy),
      department: s('string', exportRequests.department),
      requestedAt: s('date', exportRequests.requestedAt),
      status: s('string', exportRequests.status),
      decidedBy: s('string', exportRequests.decidedBy),
      decidedAt: s('date', exportRequests.decidedAt),
      expiresAt: s('date', exportRequests.expiresAt),
      rowsExported: s('number', exportRequests.rowsExported),
    },
  },
  /** A minimized analytics dataset of policies/datasets/, by name and the purpose it serves. */
  Dataset: {
    memoryOnly: true,
    fields: {
      name: s('string'),
      purpose: s('string'),
    },
  },
} satisfies Record<SubjectName, SubjectSpec | MemorySubjectSpec>;
export const subjectNames = Object.keys(subjects) as SubjectName[];

export const actions = ['read', 'reveal', 'filter', 'sort', 'lookup', 'update', 'create', 'delete', 'export', 'approve'] as const;
export type Action = (typeof actions)[number];

export type TableSubjectName = Exclude<SubjectName, 'Dataset'>;

/** The table-backed spec of a subject; a memory-only subject has none and is refused. */
export function subjectSpec(name: SubjectName): SubjectSpec {
  const spec: SubjectSpec | MemorySubjectSpec = subjects[name];
  if ('memoryOnly' in spec) throw new Error(`${name} is decided in memory only and has no table`);
  return spec;
}

export function isMemoryOnly(name: SubjectName): boolean {
  return 'memoryOnly' in subjects[name];
}
