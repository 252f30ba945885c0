/**
 * The closed set of span and attribute names custos emits. Values are ids,
 * field names, codes and counts only: never a personal value.
 */
export const SpanName = {
  operation: 'graphql.operation',
  enforce: 'custos.enforce',
  sql: 'db.query',
} as const;

export const Attr = {
  // GraphQL semantic conventions
  operationType: 'graphql.operation.type',
  operationName: 'graphql.operation.name',
  document: 'graphql.document',
  // database semantic conventions
  dbSystem: 'db.system',
  dbStatement: 'db.statement',
  // custos
  principal: 'custos.principal.pseudonym',
  roles: 'custos.principal.roles',
  policyVersion: 'custos.policy.version',
  purposes: 'custos.purposes',
  subject: 'custos.enforce.subject',
  action: 'custos.enforce.action',
  rowCount: 'custos.enforce.row_count',
  recordIds: 'custos.enforce.record_ids',
  fieldsRaw: 'custos.enforce.fields.raw',
  fieldsMasked: 'custos.enforce.fields.masked',
  fieldsRevealed: 'custos.enforce.fields.revealed',
  fieldsDenied: 'custos.enforce.fields.denied',
  decision: 'custos.enforce.decision',
  reason: 'custos.enforce.reason',
  faults: 'custos.enforce.faults',
  /** Set when the principal's status was read from the database for this request (not cached), ms. */
  principalLookupMs: 'custos.principal.lookup_ms',
  auditRecords: 'custos.audit.records',
  /** Time the request's audit records waited for their group commit(s), ms. */
  auditCommitMs: 'custos.audit.commit_ms',
  /** Of that wait, the write of the group(s) that committed them (statement sent to commit answered), ms; the rest was their turn. */
  auditFlushMs: 'custos.audit.flush_ms',
  outcome: 'custos.outcome',
} as const;
