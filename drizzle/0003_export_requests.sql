CREATE TYPE "public"."export_kind" AS ENUM('dataset', 'customers');--> statement-breakpoint
CREATE TYPE "public"."export_status" AS ENUM('pending', 'approved', 'rejected', 'revoked');--> statement-breakpoint
CREATE TABLE "export_requests" (
	"id" uuid PRIMARY KEY NOT NULL,
	"kind" "export_kind" NOT NULL,
	"dataset" text,
	"query" jsonb,
	"purpose" text NOT NULL,
	"row_limit" integer NOT NULL,
	"reason" text NOT NULL,
	"requested_by" text NOT NULL,
	"department" text,
	"requested_at" timestamp (3) with time zone DEFAULT now() NOT NULL,
	"status" "export_status" DEFAULT 'pending' NOT NULL,
	"decided_by" text,
	"decided_at" timestamp with time zone,
	"decision_reason" text,
	"expires_at" timestamp with time zone,
	"rows_exported" integer DEFAULT 0 NOT NULL,
	"policy_version" text NOT NULL,
	CONSTRAINT "export_requests_rows_within_cap" CHECK ("export_requests"."rows_exported" >= 0 and "export_requests"."rows_exported" <= "export_requests"."row_limit"),
	CONSTRAINT "export_requests_row_limit_positive" CHECK ("export_requests"."row_limit" > 0),
	CONSTRAINT "export_requests_no_self_decision" CHECK ("export_requests"."decided_by" is null or "export_requests"."decided_by" <> "export_requests"."requested_by"),
	CONSTRAINT "export_requests_target" CHECK (("export_requests"."kind" = 'dataset' and "export_requests"."dataset" is not null) or ("export_requests"."kind" = 'customers' and "export_requests"."query" is not null))
);
--> statement-breakpoint
ALTER TABLE "export_requests" ADD CONSTRAINT "export_requests_requested_by_principals_id_fk" FOREIGN KEY ("requested_by") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "export_requests" ADD CONSTRAINT "export_requests_decided_by_principals_id_fk" FOREIGN KEY ("decided_by") REFERENCES "public"."principals"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "export_requests_requester_idx" ON "export_requests" USING btree ("requested_by","requested_at");--> statement-breakpoint
CREATE INDEX "export_requests_status_idx" ON "export_requests" USING btree ("status","requested_at");