-- The audit record as it is hashed: the canonical JSON (src/audit/record.ts),
-- key for key. The appender sends the very text it hashed and the columns of
-- audit_events are read from it, so what is stored is what was chained and
-- each record is serialized once.
CREATE TYPE "audit_canonical_v1" AS (
  "v" integer,
  "seq" bigint,
  "at" timestamptz,
  "traceId" text,
  "spanId" text,
  "principalId" text,
  "roles" text[],
  "action" text,
  "subject" text,
  "recordIds" text[],
  "fields" jsonb,
  "purpose" text,
  "decision" text,
  "reason" text,
  "policyVersion" text
);
--> statement-breakpoint
-- A list read of 50 customers makes a ~2.5 kB row: keep such rows inline
-- instead of compressing record_ids and moving it out of line on every insert.
ALTER TABLE "audit_events" SET (toast_tuple_target = 8160);
