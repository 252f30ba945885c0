/**
 * The floor: what the database alone gives. A bare node:http handler that
 * parses the same request body, issues the statements custos issues for each
 * benchmark operation (the same text and parameters: bench/floor-sql.ts),
 * decrypts the one revealed cell of S4 as custos must, and answers JSON
 * shaped like the GraphQL response. No token verification, no GraphQL, no
 * policy, no audit.
 *
 * The database is used at least as well as custos uses it: every statement
 * runs as a named prepared statement (custos prepares its policed reads, not
 * its auditor's queries), and the policed reads' statements run on
 * connections of their own with `plan_cache_mode = force_generic_plan`,
 * DB_POOL_MAX shared between the two pools as custos shares it
 * (src/db/pool-split.ts).
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import postgres from 'postgres';
import { loadConfig } from '../src/config.js';
import { readsPool } from '../src/db/pool-split.js';
import { decryptField, unwrapDataKey } from '../src/crypto/envelope.js';
import { S1, S2_CUSTOMERS, S2_ORDERS, S3, S4, S5 } from './floor-sql.js';

type Row = Record<string, unknown>;

const config = loadConfig();
if (config.database.kind !== 'postgres') throw new Error('the floor server needs DATABASE_URL');
const connection = { application_name: 'custos-floor' };
const split = readsPool(config.database.poolMax);
const rest = postgres(config.database.url, { max: split ? split.rest : config.database.poolMax, onnotice: () => undefined, connection });
const reads = split
  ? postgres(config.database.url, {
      max: split.reads,
      onnotice: () => undefined,
      connection: { application_name: 'custos-floor-reads', plan_cache_mode: 'force_generic_plan' },
    })
  : rest;
let statements = 0;

function run(sql: postgres.Sql, text: string, params: unknown[]): Promise<Row[]> {
  statements += 1;
  return sql.unsafe<Row[]>(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
}

/** A policed read of custos's. */
const read = (text: string, params: unknown[]) => run(reads, text, params);
/** Anything else: the auditor's query, the principal lookup. */
const query = (text: string, params: unknown[]) => run(rest, text, params);

const times = <T>(n: number, value: T): T[] => Array.from({ length: n }, () => value);

const customerNode = (r: Row, phone: unknown = r.m3) => ({
  id: r.v0, name: r.v1, phone, email: r.m5, city: r.v6, province: r.v7, tier: r.v8, segment: r.v9, createdAt: r.v10, ownerId: r.v11,
});

async function list(department: string): Promise<unknown> {
  const rows = await read(S1, times(14, department));
  return { customers: { edges: rows.slice(0, 50).map((r) => ({ node: customerNode(r) })) } };
}

async function nested(department: string): Promise<unknown> {
  const parents = (await read(S2_CUSTOMERS, times(6, department))).slice(0, 20);
  const orders = await read(S2_ORDERS, [parents.map((p) => p.a_id as string)]);
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
      orders: { edges: (byParent.get(p.a_id as string) ?? []).filter((o) => Number(o.__rn) <= 10).map((o) => ({ node: { id: o.v0, amount: o.v1, placedAt: o.v2, status: o.v3 } })) },
    },
  }));
  return { customers: { edges } };
}

async function point(department: string, id: string): Promise<unknown> {
  const [row] = await read(S3, [...times(14, department), id]);
  return { customer: row ? customerNode(row) : null };
}

async function reveal(department: string, id: string): Promise<unknown> {
  const [row] = await read(S4, [...times(18, department), id]);
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
  server.close(() => void Promise.all([...new Set([rest, reads])].map((pool) => pool.end({ timeout: 5 }))).then(() => process.exit(0)));
  server.closeAllConnections();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
