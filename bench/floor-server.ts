/**
 * The floor: what the database alone gives. A bare node:http handler that
 * parses the same request body, issues the statements custos issues for each
 * benchmark operation (the same text and parameters, through the same
 * driver call drizzle makes: postgres.js `unsafe`), decrypts the one revealed
 * cell of S4 as custos must, and answers JSON shaped like the GraphQL
 * response. No token verification, no GraphQL, no policy, no audit.
 *
 * The statement texts were captured from custos (log_statement=all as a
 * connection parameter) and must follow src/authz when its SQL changes.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import postgres from 'postgres';
import { loadConfig } from '../src/config.js';
import { decryptField, unwrapDataKey } from '../src/crypto/envelope.js';

type Row = Record<string, unknown>;

const config = loadConfig();
if (config.database.kind !== 'postgres') throw new Error('the floor server needs DATABASE_URL');
const sql = postgres(config.database.url, { max: config.database.poolMax, onnotice: () => undefined, connection: { application_name: 'custos-floor' } });
let statements = 0;

function query(text: string, params: unknown[]): Promise<Row[]> {
  statements += 1;
  return sql.unsafe<Row[]>(text, params as postgres.ParameterOrJSON<never>[]);
}

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

const S1 = `SELECT ${customerColumns()}, "customers"."id"::text AS "__k" FROM "customers" WHERE (${dep(14)}) ORDER BY "customers"."id" ASC LIMIT 51`;
const S3 = `SELECT ${customerColumns()} FROM "customers" WHERE (${dep(14)}) AND ("customers"."id" = $15::uuid) LIMIT 1`;
const S2_CUSTOMERS =
  `SELECT (${dep(1)}) AS "f0", ${when(2, '"customers"."id"')} AS "v0", (${dep(3)}) AS "f1", ` +
  `CASE WHEN ${dep(4)} THEN "customers"."name" WHEN ${dep(5)} THEN "customers"."name_masked" END AS "v1", ` +
  `"customers"."id" AS "a_id", "customers"."department" AS "a_department", "customers"."id"::text AS "__k" ` +
  `FROM "customers" WHERE (${dep(6)}) ORDER BY "customers"."id" ASC LIMIT 21`;
const S2_ORDERS =
  `SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY "__parent" ORDER BY "__sort" DESC, "__id" DESC) AS "__rn" FROM (` +
  `SELECT "orders"."id" AS "v0", "orders"."amount"::text AS "v1", to_char("orders"."placed_at" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "v2", ` +
  `"orders"."status" AS "v3", "orders"."id" AS "a_id", "orders"."customer_id"::text AS "__parent", "orders"."placed_at" AS "__sort", ` +
  `"orders"."placed_at"::text AS "__k", "orders"."id" AS "__id", count(*) OVER (PARTITION BY "orders"."customer_id") AS "__total" ` +
  `FROM "orders" WHERE (true) AND ("orders"."customer_id" = ANY($1::uuid[]))) AS base) AS ranked WHERE "__rn" <= 11 ORDER BY "__parent", "__rn"`;
const S4 =
  `SELECT (${dep(1)}) AS "f0", ${when(2, '"customers"."id"')} AS "v0", (${dep(3)}) AS "f1", ` +
  `CASE WHEN ${dep(4)} THEN "customers"."name" WHEN ${dep(5)} THEN "customers"."name_masked" END AS "v1", (${dep(6)}) AS "f2", ` +
  `${when(7, '"customers"."phone_enc"')} AS "v2", ${when(8, '"customers"."phone_masked"')} AS "m3", CASE WHEN false THEN "customers"."email_enc" END AS "v4", ` +
  `${when(9, '"customers"."email_masked"')} AS "m5", ${when(10, '"customers"."city"')} AS "v6", ${when(11, '"customers"."province"')} AS "v7", ` +
  `${when(12, '"customers"."tier"')} AS "v8", ${when(13, '"customers"."segment"')} AS "v9", ${when(14, createdAt)} AS "v10", ` +
  `${when(15, '"customers"."owner_id"')} AS "v11", "customers"."id" AS "a_id", "customers"."department" AS "a_department", ` +
  `CASE WHEN (${dep(16)}) THEN "customer_keys"."wrapped_key" END AS "wk", CASE WHEN (${dep(17)}) THEN "customer_keys"."kek_id" END AS "wk_id" ` +
  `FROM "customers" LEFT JOIN "customer_keys" ON "customer_keys"."customer_id" = "customers"."id" WHERE (${dep(18)}) AND ("customers"."id" = $19::uuid) LIMIT 1`;
const S5 =
  'select seq::text as seq_text, (extract(epoch from at) * 1000)::float8 as at_ms, trace_id, span_id, principal_id, roles,\n' +
  '\t   action, subject, record_ids, fields, purpose, decision, reason, policy_version, prev_hash, hash from audit_events where trace_id = $1 order by seq';

const times = <T>(n: number, value: T): T[] => Array.from({ length: n }, () => value);

const customerNode = (r: Row, phone: unknown = r.m3) => ({
  id: r.v0, name: r.v1, phone, email: r.m5, city: r.v6, province: r.v7, tier: r.v8, segment: r.v9, createdAt: r.v10, ownerId: r.v11,
});

async function list(department: string): Promise<unknown> {
  const rows = await query(S1, times(14, department));
  return { customers: { edges: rows.slice(0, 50).map((r) => ({ node: customerNode(r) })) } };
}

async function nested(department: string): Promise<unknown> {
  const parents = (await query(S2_CUSTOMERS, times(6, department))).slice(0, 20);
  const orders = await query(S2_ORDERS, [parents.map((p) => p.a_id as string)]);
  const byParent = new Map<string, Row[]>();
  for (const o of orders) {
    const mine = byParent.get(o.__parent as string) ?? [];
    mine.push(o);
    byParent.set(o.__parent as string, mine);
  }
  const edges = parents.map((p) => ({
    node: {
      id: p.v0,
      name: p.v1,
      orders: { edges: (byParent.get(p.a_id as string) ?? []).slice(0, 10).map((o) => ({ node: { id: o.v0, amount: o.v1, placedAt: o.v2, status: o.v3 } })) },
    },
  }));
  return { customers: { edges } };
}

async function point(department: string, id: string): Promise<unknown> {
  const [row] = await query(S3, [...times(14, department), id]);
  return { customer: row ? customerNode(row) : null };
}

async function reveal(department: string, id: string): Promise<unknown> {
  const [row] = await query(S4, [...times(18, department), id]);
  if (!row) return { customer: null };
  let phone: unknown = row.m3;
  if (row.f2 === true && row.v2 && row.wk && typeof row.wk_id === 'string') {
    const dek = unwrapDataKey(config.keys.keyring, id, { kekId: row.wk_id, wrapped: row.wk as Buffer });
    phone = decryptField(dek, id, 'phone', row.v2 as Buffer);
  }
  return { customer: customerNode(row, phone) };
}

async function auditTrail(traceId: string): Promise<unknown> {
  const rows = await query(S5, [traceId]);
  return {
    auditTrail: rows.map((r) => ({
      seq: Number(r.seq_text), at: new Date(r.at_ms as number).toISOString(), traceId: r.trace_id, spanId: r.span_id, principalId: r.principal_id,
      roles: r.roles, action: r.action, subject: r.subject, recordIds: r.record_ids, fields: r.fields, purpose: r.purpose, decision: r.decision,
      reason: r.reason, policyVersion: r.policy_version, hash: (r.hash as Buffer).toString('hex'),
    })),
  };
}

/** The token's subject, read without verification (the floor measures the database, not authentication). */
function subjectOf(req: IncomingMessage): string | undefined {
  const payload = (req.headers.authorization ?? '').split('.')[1];
  if (!payload) return undefined;
  return (JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: string }).sub;
}

const departments = new Map<string, string>();
async function departmentOf(principalId: string | undefined): Promise<string> {
  if (!principalId) throw new Error('no principal');
  let department = departments.get(principalId);
  if (department === undefined) {
    const [row] = await query('select department from principals where id = $1', [principalId]);
    department = (row?.department as string | null) ?? '';
    departments.set(principalId, department);
  }
  return department;
}

interface Body {
  operationName?: string;
  variables?: { id?: string; traceId?: string };
}

async function graphql(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req as AsyncIterable<Buffer>) chunks.push(chunk);
  const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Body;
  const department = await departmentOf(subjectOf(req));
  const vars = body.variables ?? {};
  switch (body.operationName) {
    case 'S1List':
      return list(department);
    case 'S2Nested':
      return nested(department);
    case 'S3Point':
      return point(department, String(vars.id));
    case 'S4Reveal':
      return reveal(department, String(vars.id));
    case 'S5Audit':
      return auditTrail(String(vars.traceId));
    case undefined:
    default:
      throw new Error(`unknown operation ${body.operationName ?? '(none)'}`);
  }
}

function send(res: ServerResponse, status: number, body: unknown, type = 'application/json; charset=utf-8'): void {
  res.writeHead(status, { 'content-type': type });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

const server = createServer((req, res) => {
  const route = async () => {
    switch (req.url) {
      case '/graphql':
        return send(res, 200, { data: await graphql(req) });
      case '/readyz':
        await query('select 1', []);
        return send(res, 200, { status: 'ready' });
      case '/metrics':
        return send(res, 200, `# TYPE custos_db_statements_total counter\ncustos_db_statements_total ${statements}\n`, 'text/plain; version=0.0.4');
      case undefined:
      default:
        return send(res, 404, { error: 'not found' });
    }
  };
  route().catch((e: unknown) => send(res, 500, { errors: [{ message: (e as Error).message }] }));
});

server.listen(config.port, config.host);
const stop = () => {
  server.close(() => void sql.end({ timeout: 5 }).then(() => process.exit(0)));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
