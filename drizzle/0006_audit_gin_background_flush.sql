-- Record ids go to GIN's pending list again (fastupdate on), and the service
-- merges that list into the index in the background (audit_merge_pending_record_ids,
-- below) instead of the insert that fills it doing so on a request's commit.
-- Measured on the bench's S1 (50 customers per read): with fastupdate off the
-- index took 0.2 ms of PostgreSQL CPU per audited read, about as much as the
-- read itself; through the pending list, merged in bulk, a tenth of that,
-- because each id's new entries go into the index in one step. The limit is
-- only the fallback when nothing merges (no custos running with strict audit):
-- then the insert that reaches it merges the list, as PostgreSQL does by default.
ALTER INDEX "audit_events_record_ids_idx" SET (fastupdate = on, gin_pending_list_limit = 32768);
--> statement-breakpoint
-- gin_clean_pending_list() needs the index's owner; the service's role
-- (custos_app) may call only this wrapper. SECURITY DEFINER with a fixed
-- search_path (pg_temp last) and the index named with the schema it was
-- migrated in, so no object of the caller's can stand in for it. One merge at a
-- time across replicas: a caller that finds another merging returns -1 at
-- once instead of queueing behind it. Otherwise it returns the pending pages it
-- moved (0: nothing was pending).
DO $$
BEGIN
  EXECUTE format(
    $fn$
    CREATE OR REPLACE FUNCTION audit_merge_pending_record_ids() RETURNS bigint
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $body$
    BEGIN
      IF NOT pg_try_advisory_xact_lock(109356099334004) THEN
        RETURN -1;
      END IF;
      RETURN gin_clean_pending_list(%L::regclass);
    END
    $body$
    $fn$,
    format('%I.%I', current_schema(), 'audit_events_record_ids_idx')
  );
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION audit_merge_pending_record_ids() FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION audit_merge_pending_record_ids() TO custos_app;
