/**
 * The benchmark database: the project's own seed on PostgreSQL, created and
 * seeded once (`npm run db:seed`) with the dataset's throwaway keys
 * (bench/secrets.ts), reused whenever it already holds exactly the wanted
 * number of customers and its data keys are wrapped with the stored key.
 */
import { spawn } from 'node:child_process';
import postgres from 'postgres';
import { freshSecrets, secretsEnv, storedSecrets, type BenchSecrets } from './secrets.js';
import { repoRoot } from './servers.js';

export interface Dataset {
  url: string;
  customers: number;
  orders: number;
  /** Seconds spent seeding in this run (0: reused). */
  seedSec: number;
  /** The audit trail as the run finds it: every run adds its records to a reused dataset (see auditTrailSize). */
  auditTrail: AuditTrailSize;
  /** The keys the data was sealed with; the servers get them. */
  secrets: BenchSecrets;
}

function withDatabase(baseUrl: string, database: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function counts(url: string): Promise<{ customers: number; orders: number; kekIds: string[] }> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [t] = await sql<Array<{ c: string | null; o: string | null }>>`select to_regclass('public.customers')::text as c, to_regclass('public.orders')::text as o`;
    if (!t?.c || !t.o) return { customers: 0, orders: 0, kekIds: [] };
    const [row] = await sql<Array<{ customers: number; orders: number }>>`
      select (select count(*)::int from customers) as customers, (select count(*)::int from orders) as orders`;
    const keks = await sql<Array<{ kek_id: string }>>`select distinct kek_id from customer_keys`;
    return { customers: row?.customers ?? 0, orders: row?.orders ?? 0, kekIds: keks.map((k) => k.kek_id) };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function seed(url: string, customers: number, reset: boolean, secrets: BenchSecrets): Promise<void> {
  const args = ['run', '-s', 'db:seed', '--', '--customers', String(customers), ...(reset ? ['--reset'] : [])];
  return new Promise((resolve, reject) => {
    const env = { ...process.env, DATABASE_URL: url, ...secretsEnv(secrets) };
    const child = spawn('npm', args, { cwd: repoRoot, env, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`db:seed exited with ${code}`))));
  });
}

/**
 * The PostgreSQL server the bench seeds and measures on: BENCH_PG_URL, else the server DATABASE_URL names
 * (the project's database setting; the bench uses databases of its own there, never DATABASE_URL's), else
 * the machine's local server. `shown` leaves the password out.
 */
export function postgresServer(env: NodeJS.ProcessEnv): { url: string; from: string; shown: string } {
  const [url, key, from] = env.BENCH_PG_URL
    ? [env.BENCH_PG_URL, 'BENCH_PG_URL', 'BENCH_PG_URL']
    : env.DATABASE_URL && /^postgres(ql)?:\/\//.test(env.DATABASE_URL)
      ? [env.DATABASE_URL, 'DATABASE_URL', 'the server of DATABASE_URL']
      : ['postgres://postgres@127.0.0.1:5432/postgres', 'the default', 'the local default'];
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`${key} is not a URL`);
  }
  const shown = `${parsed.protocol}//${parsed.username ? `${decodeURIComponent(parsed.username)}@` : ''}${parsed.host}`;
  return { url, from, shown };
}

/**
 * Every run adds its audit records to the dataset (~1M in a full run). Production's autovacuum analyzes
 * the table as it grows; here it may be off (it is, on the machines this ran on), and with
 * statistics as old as the seed PostgreSQL expected thousands of records per trace and answered S5 with
 * a parallel scan (~1 ms of CPU in worker start-up per request, all three variants). So the bench does
 * what autovacuum would, before each run and before each window, outside the measured time: it analyzes
 * the table when it was never analyzed or when more rows changed since than the server's own autovacuum
 * threshold (`autovacuum_analyze_threshold` + `autovacuum_analyze_scale_factor` × rows; 50 + 10 % by
 * default). An ANALYZE of a million records takes ~0.7 s; before every window it was a tenth of a quick run.
 * Resolves to whether it analyzed.
 */
export async function analyzeAuditTrail(url: string): Promise<boolean> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [table] = await sql<Array<{ never: boolean; changed: number; rows: number; base: number; scale: number }>>`
      select (s.last_analyze is null and s.last_autoanalyze is null) as never,
             s.n_mod_since_analyze::float8 as changed, greatest(c.reltuples, 0)::float8 as rows,
             current_setting('autovacuum_analyze_threshold')::float8 as base,
             current_setting('autovacuum_analyze_scale_factor')::float8 as scale
      from pg_class c join pg_stat_user_tables s on s.relid = c.oid
      where c.relname = 'audit_events'`;
    if (!table) return false;
    const due = table.never || table.changed > table.base + table.scale * table.rows;
    if (due) await sql`analyze audit_events`;
    return due;
  } finally {
    await sql.end({ timeout: 5 });
  }
}

export interface AuditTrailSize {
  /** Records, as PostgreSQL's statistics estimate them (exact after an ANALYZE with no writes since). */
  records: number;
  /** The table with its indexes and TOAST, MB. */
  mb: number;
}

/**
 * How large the trail is at the start of a run. A reused dataset's trail grows with every run (a full run adds
 * ~1M records, a quick one ~100k); its indexes grow with it, and so does what a commit and a trace lookup touch,
 * so two runs compare best at similar trail sizes. Read after analyzeAuditTrail, which keeps the estimate close.
 */
export async function auditTrailSize(url: string): Promise<AuditTrailSize> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [row] = await sql<Array<{ records: number; mb: number }>>`
      select greatest(c.reltuples, 0)::float8 as records, pg_total_relation_size(c.oid)::float8 / 1048576 as mb
      from pg_class c where c.oid = to_regclass('public.audit_events')`;
    return { records: row?.records ?? 0, mb: row?.mb ?? 0 };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** Makes sure `database` exists and holds `customers` customers; seeds (and analyzes) it when it does not. */
export async function ensureDataset(opts: { serverUrl: string; database: string; customers: number }): Promise<Dataset> {
  if (!/^[a-z_][a-z0-9_]*$/.test(opts.database)) throw new Error(`bad database name ${opts.database}`);
  const admin = postgres(withDatabase(opts.serverUrl, 'postgres'), { max: 1, onnotice: () => undefined });
  try {
    const [exists] = await admin`select 1 from pg_database where datname = ${opts.database}`;
    if (!exists) await admin.unsafe(`create database ${opts.database}`);
  } finally {
    await admin.end({ timeout: 5 });
  }
  const url = withDatabase(opts.serverUrl, opts.database);
  const before = await counts(url);
  const stored = storedSecrets(opts.database);
  const sealedWithStored = stored !== undefined && before.kekIds.length === 1 && before.kekIds[0] === stored.kekId;
  if (before.customers === opts.customers && sealedWithStored) {
    await analyzeAuditTrail(url);
    return { url, customers: before.customers, orders: before.orders, seedSec: 0, secrets: stored, auditTrail: await auditTrailSize(url) };
  }
  // A different count is a leftover (an interrupted seed, another size), other keys a dataset this checkout cannot open: start over.
  const why = before.customers === 0 ? 'empty' : sealedWithStored ? `found ${before.customers}` : 'sealed with keys this checkout does not hold';
  console.log(`seeding ${opts.database} with ${opts.customers} customers (${why}); this runs once`);
  const secrets = freshSecrets(opts.database);
  const started = performance.now();
  await seed(url, opts.customers, before.customers > 0, secrets);
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  await sql`analyze`.finally(() => sql.end({ timeout: 5 }));
  const seedSec = (performance.now() - started) / 1000;
  const after = await counts(url);
  return { url, customers: after.customers, orders: after.orders, seedSec, secrets, auditTrail: await auditTrailSize(url) };
}
