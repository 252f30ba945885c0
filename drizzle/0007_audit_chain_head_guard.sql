-- The one-statement append (src/audit/store.ts appendAfter) links new records
-- to the head its writer committed last, and first checks that this head is
-- still in the trail. That check is a primary-key probe, but PostgreSQL chose
-- a sequential scan for it whenever the statistics said the trail was a few
-- pages (an ANALYZE of the empty table, as a new deployment or a freshly
-- seeded benchmark has), and the append's prepared statement kept that plan:
-- every append then read the whole trail, and nothing re-planned it until the
-- next ANALYZE. Where autovacuum is off, the audit commit wait grew with the
-- trail (a 10-minute soak at 100 req/s: p99 10 -> 50 ms). Planned inside this
-- function with sequential scans priced out, the probe goes through the
-- primary key whatever the statistics say. plpgsql keeps its plan per
-- session, and the setting holds only while the function runs. The table is
-- named with the schema it was migrated in, and the search path is fixed.
DO $$
BEGIN
  EXECUTE format(
    $fn$
    CREATE OR REPLACE FUNCTION audit_chain_head_is(head_seq bigint, head_hash bytea) RETURNS boolean
    LANGUAGE plpgsql STABLE SET enable_seqscan = off SET search_path = pg_catalog, pg_temp AS $body$
    BEGIN
      RETURN EXISTS (SELECT 1 FROM %I.audit_events WHERE seq = head_seq AND hash = head_hash);
    END
    $body$
    $fn$,
    current_schema()
  );
END
$$;
--> statement-breakpoint
REVOKE ALL ON FUNCTION audit_chain_head_is(bigint, bytea) FROM PUBLIC;
--> statement-breakpoint
GRANT EXECUTE ON FUNCTION audit_chain_head_is(bigint, bytea) TO custos_app;
