/**
 * How DB_POOL_MAX connections are shared: policed reads get all but a quarter
 * (at least one is left to the rest: audit appends, auditor queries, principal
 * lookups, writes), on connections with `plan_cache_mode = force_generic_plan`.
 * PostgreSQL otherwise plans every execution of a policed read afresh: its
 * automatic mode keeps a custom plan whenever the generic one looks dearer,
 * and it does for these reads (~130–160 µs of planning per read, S1's list
 * among them). The parameter that steers their plans most, the row count, is
 * a literal in their text (src/authz/reader.ts `literalCount`); what stays a
 * parameter (department or owner of the row policy, filter values, keyset
 * bounds, parent ids) is planned from average selectivities, which for these
 * shapes gives the plans the values would (checked with EXPLAIN on the bench
 * data). The rest keep PostgreSQL's automatic choice: an auditor's "who read
 * customer X" page, say, needs the value to choose between the GIN index and
 * a scan by seq. With fewer than two connections there is one pool, as before.
 */
export function readsPool(poolMax: number): { reads: number; rest: number } | null {
  if (poolMax < 2) return null;
  const rest = Math.max(1, Math.floor(poolMax / 4));
  return { reads: poolMax - rest, rest };
}
