import type { Span } from '@opentelemetry/api';
import type DataLoader from 'dataloader';
import type { AccessDecision } from '../authz/decision.js';
import type { EnforcementFault, ReadContext, ReadObserver } from '../authz/reader.js';
import type { RequestAuthz } from '../authz/request-authz.js';
import type { Principal } from '../authz/principal.js';
import type { CryptoKeys } from '../crypto/customer-record.js';
import type { Db } from '../db/client.js';
import type { Logger } from '../telemetry/logger.js';
import type { Telemetry } from '../telemetry/tracing.js';
import { readObserver } from './observer.js';

/** Everything a resolver may use: the caller's policy view, the database behind it, and per-request loaders. */
export interface Context {
  principal: Principal;
  authz: RequestAuthz;
  db: Db;
  /** Where policed reads run (`DbHandle.reads`: generic plans on PostgreSQL). */
  reads: Db;
  keys: CryptoKeys;
  cursorSecret: string;
  /** HMAC key of the datasets' pseudonymous ids. */
  pseudonymKey: Buffer;
  maxPageSize: number;
  faults: EnforcementFault[];
  logger: Logger;
  loaders: Map<string, DataLoader<string, unknown>>;
  telemetry: Telemetry;
  /** The operation span: every enforcement and SQL span of the request hangs below it. */
  span: Span;
  /** What the request decided, for the audit trail (appended before the response leaves in strict mode). */
  decisions: AccessDecision[];
  /**
   * The audit append of this request's decisions, once started; the response waits for it.
   * A holder object, because Apollo hands plugins a shallow copy of the context.
   */
  audit: { committed?: Promise<void>; records: number; commitMs: number; flushMs: number };
}

/** What each kind of fault means, for the log line (ids only ride along in `fault`). */
const faultMessages: Readonly<Record<EnforcementFault['kind'], string>> = {
  row: 'enforcement fault: SQL returned a row the in-memory check refuses (dropped)',
  read: 'enforcement fault: SQL and in-memory check disagree on a field read (withheld)',
  reveal: 'enforcement fault: SQL and in-memory check disagree on a reveal (withheld)',
  decrypt: 'enforcement fault: a ciphertext failed to decrypt (moved or tampered; withheld)',
  erased: 'enforcement fault: reveal of a customer whose data key is destroyed (withheld)',
};

export function readContext(ctx: Context): ReadContext {
  return {
    db: ctx.reads,
    authz: ctx.authz,
    keyring: ctx.keys.keyring,
    onFault: (fault) => {
      // Ids, subject and field names only: a fault report never carries a value.
      ctx.faults.push(fault);
      ctx.decisions.push({
        subject: fault.subject,
        action: 'deny',
        recordIds: [fault.recordId],
        fields: { raw: [], masked: [], revealed: [], denied: fault.field ? [fault.field] : [] },
        purpose: null,
        decision: 'deny',
        reason: `enforcement fault: ${fault.kind}`,
      });
      ctx.logger.warn({ fault, principal: ctx.principal.id }, faultMessages[fault.kind]);
    },
    observer: requestObserver(ctx),
  };
}

/** The enforcement span, SQL spans and audit decisions of this request. */
export function requestObserver(ctx: Context): ReadObserver {
  return readObserver({
    db: ctx.reads,
    dbSystem: 'postgresql',
    telemetry: ctx.telemetry,
    span: ctx.span,
    policyVersion: ctx.authz.bundle.version,
    decisions: ctx.decisions,
  });
}
