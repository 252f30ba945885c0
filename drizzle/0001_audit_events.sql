CREATE TABLE "audit_events" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"at" timestamp (3) with time zone NOT NULL,
	"trace_id" text,
	"span_id" text,
	"principal_id" text NOT NULL,
	"roles" text[] NOT NULL,
	"action" text NOT NULL,
	"subject" text NOT NULL,
	"record_ids" text[] NOT NULL,
	"fields" jsonb NOT NULL,
	"purpose" text,
	"decision" text NOT NULL,
	"reason" text,
	"policy_version" text NOT NULL,
	"prev_hash" "bytea" NOT NULL,
	"hash" "bytea" NOT NULL
);
--> statement-breakpoint
CREATE INDEX "audit_events_trace_idx" ON "audit_events" USING btree ("trace_id");--> statement-breakpoint
CREATE INDEX "audit_events_principal_at_idx" ON "audit_events" USING btree ("principal_id","at");--> statement-breakpoint
CREATE INDEX "audit_events_record_ids_idx" ON "audit_events" USING gin ("record_ids");--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "audit_events" USING btree ("at");