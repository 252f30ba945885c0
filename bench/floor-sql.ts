/**
 * The statements the floor sends: custos's own texts, byte for byte, for the
 * benchmark's operations as a sales manager (S1–S4) and an auditor (S5).
 * They were captured from custos (log_statement=all) and must follow
 * src/authz and src/audit when their SQL changes; test/bench-floor.test.ts
 * fails when they no longer match.
 */

const dep = (n: number) => `"customers"."department" = $${n}`;
const when = (n: number, expr: string) => `CASE WHEN ${dep(n)} THEN ${expr} END`;
const createdAt = `to_char("customers"."created_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** The ten customer fields of S1/S3, masked phone and email (sales_manager, own department). */
function customerColumns(): string {
  return [
    `(${dep(1)}) AS "f0"`,
    `${when(2, '"customers"."id"')} AS "v0"`,
    `(${dep(3)}) AS "f1"`,
    `CASE WHEN ${dep(4)} THEN "customers"."name" WHEN ${dep(5)} THEN "customers"."name_masked" END AS "v1"`,
    `CASE WHEN false THEN "customers"."phone_enc" END AS "v2"`,
    `${when(6, '"customers"."phone_masked"')} AS "m3"`,
    `CASE WHEN false THEN "customers"."email_enc" END AS "v4"`,
    `${when(7, '"customers"."email_masked"')} AS "m5"`,
    `${when(8, '"customers"."city"')} AS "v6"`,
    `${when(9, '"customers"."province"')} AS "v7"`,
    `${when(10, '"customers"."tier"')} AS "v8"`,
    `${when(11, '"customers"."segment"')} AS "v9"`,
    `${when(12, createdAt)} AS "v10"`,
    `${when(13, '"customers"."owner_id"')} AS "v11"`,
    `"customers"."id" AS "a_id"`,
    `"customers"."department" AS "a_department"`,
  ].join(', ');
}

export const S1 = `SELECT ${customerColumns()}, "customers"."id"::text AS "__k" FROM "customers" WHERE (${dep(14)}) ORDER BY "customers"."id" ASC LIMIT 51`;
export const S3 = `SELECT ${customerColumns()} FROM "customers" WHERE (${dep(14)}) AND ("customers"."id" = $15::uuid) LIMIT 1`;
export const S2_CUSTOMERS =
  `SELECT (${dep(1)}) AS "f0", ${when(2, '"customers"."id"')} AS "v0", (${dep(3)}) AS "f1", ` +
  `CASE WHEN ${dep(4)} THEN "customers"."name" WHEN ${dep(5)} THEN "customers"."name_masked" END AS "v1", ` +
  `"customers"."id" AS "a_id", "customers"."department" AS "a_department", "customers"."id"::text AS "__k" ` +
  `FROM "customers" WHERE (${dep(6)}) ORDER BY "customers"."id" ASC LIMIT 21`;
export const S2_ORDERS =
  `SELECT "page".*, "parent"."id"::text AS "__parent" FROM unnest($1::uuid[]) AS "parent"("id") CROSS JOIN LATERAL (` +
  `SELECT "orders"."id" AS "v0", "orders"."amount"::text AS "v1", to_char("orders"."placed_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "v2", ` +
  `"orders"."status" AS "v3", "orders"."id" AS "a_id", "orders"."placed_at"::text AS "__k", ` +
  `row_number() OVER (ORDER BY "orders"."placed_at" DESC, "orders"."id" DESC) AS "__rn" ` +
  `FROM "orders" WHERE (true) AND ("orders"."customer_id" = "parent"."id") ORDER BY "orders"."placed_at" DESC, "orders"."id" DESC LIMIT 11) AS "page"`;
export const S4 =
  `SELECT (${dep(1)}) AS "f0", ${when(2, '"customers"."id"')} AS "v0", (${dep(3)}) AS "f1", ` +
  `CASE WHEN ${dep(4)} THEN "customers"."name" WHEN ${dep(5)} THEN "customers"."name_masked" END AS "v1", (${dep(6)}) AS "f2", ` +
  `${when(7, '"customers"."phone_enc"')} AS "v2", ${when(8, '"customers"."phone_masked"')} AS "m3", CASE WHEN false THEN "customers"."email_enc" END AS "v4", ` +
  `${when(9, '"customers"."email_masked"')} AS "m5", ${when(10, '"customers"."city"')} AS "v6", ${when(11, '"customers"."province"')} AS "v7", ` +
  `${when(12, '"customers"."tier"')} AS "v8", ${when(13, '"customers"."segment"')} AS "v9", ${when(14, createdAt)} AS "v10", ` +
  `${when(15, '"customers"."owner_id"')} AS "v11", "customers"."id" AS "a_id", "customers"."department" AS "a_department", ` +
  `CASE WHEN (${dep(16)}) THEN "customer_keys"."wrapped_key" END AS "wk", CASE WHEN (${dep(17)}) THEN "customer_keys"."kek_id" END AS "wk_id" ` +
  `FROM "customers" LEFT JOIN "customer_keys" ON "customer_keys"."customer_id" = "customers"."id" WHERE (${dep(18)}) AND ("customers"."id" = $19::uuid) LIMIT 1`;
export const S5 =
  'select seq::text as seq_text, (extract(epoch from at) * 1000)::float8 as at_ms, trace_id, span_id, principal_id, roles,\n' +
  '   action, subject, record_ids, fields, purpose, decision, reason, policy_version, prev_hash, hash from audit_events where trace_id = $1 order by seq';
