-- Least privilege and append-only enforcement for the audit trail.
--
-- Production: migrations run as the schema owner; the service connects as a
-- LOGIN role that is a member of custos_app (e.g. CREATE ROLE custos_svc LOGIN
-- IN ROLE custos_app), with the usual SELECT/INSERT/UPDATE/DELETE grants on the
-- other tables. On audit_events that role may only SELECT and INSERT.
-- Roles are cluster-wide: the role is created once and reused by every
-- database of the cluster; if the migrating user lacks CREATEROLE, a DBA
-- creates custos_app (NOLOGIN) beforehand and this block leaves it alone.
DO $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'custos_app') THEN
    BEGIN
      CREATE ROLE custos_app NOLOGIN;
    EXCEPTION WHEN duplicate_object OR unique_violation THEN
      -- Another database of the cluster migrated concurrently and created it first.
      NULL;
    END;
  END IF;
END
$$;
--> statement-breakpoint
REVOKE ALL ON TABLE "audit_events" FROM PUBLIC;
--> statement-breakpoint
REVOKE ALL ON TABLE "audit_events" FROM custos_app;
--> statement-breakpoint
GRANT SELECT, INSERT ON TABLE "audit_events" TO custos_app;
--> statement-breakpoint
-- Refuses every change to written records, whoever asks (the owner included).
-- An attacker with owner or superuser rights can still disable the trigger:
-- the hash chain (npm run audit:verify) is what detects that.
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION 'audit_events is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END
$$;
--> statement-breakpoint
-- Statement level, so even an UPDATE or DELETE matching no row is refused.
CREATE TRIGGER audit_events_append_only
  BEFORE UPDATE OR DELETE OR TRUNCATE ON "audit_events"
  FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
--> statement-breakpoint
-- ALWAYS: also fires under session_replication_role = replica, a common way to skip triggers.
ALTER TABLE "audit_events" ENABLE ALWAYS TRIGGER audit_events_append_only;
