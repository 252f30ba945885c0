/**
 * The benchmark database: the project's own seed on PostgreSQL, created and
 * seeded once (`npm run db:seed`), reused whenever it already holds exactly
 * the wanted number of customers.
 */
import { spawn } from 'node:child_process';
import postgres from 'postgres';
import { repoRoot } from './servers.js';

export interface Dataset {
  url: string;
  customers: number;
  orders: number;
  /** Seconds spent seeding in this run (0: reused). */
  seedSec: number;
}

function withDatabase(baseUrl: string, database: string): string {
  const url = new URL(baseUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function counts(url: string): Promise<{ customers: number; orders: number }> {
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    const [t] = await sql<Array<{ c: string | null; o: string | null }>>`select to_regclass('public.customers')::text as c, to_regclass('public.orders')::text as o`;
    if (!t?.c || !t.o) return { customers: 0, orders: 0 };
    const [row] = await sql<Array<{ customers: number; orders: number }>>`
      select (select count(*)::int from customers) as customers, (select count(*)::int from orders) as orders`;
    return row ?? { customers: 0, orders: 0 };
  } finally {
    await sql.end({ timeout: 5 });
  }
}

function seed(url: string, customers: number, reset: boolean): Promise<void> {
  const args = ['run', '-s', 'db:seed', '--', '--customers', String(customers), ...(reset ? ['--reset'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, { cwd: repoRoot, env: { ...process.env, DATABASE_URL: url }, stdio: ['ignore', 'inherit', 'inherit'] });
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`db:seed exited with ${code}`))));
  });
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
  if (before.customers === opts.customers) return { url, ...before, seedSec: 0 };
  // A different count is a leftover (an interrupted seed, another size): start over.
  console.log(`seeding ${opts.database} with ${opts.customers} customers (found ${before.customers}); this runs once`);
  const started = performance.now();
  await seed(url, opts.customers, before.customers > 0);
  const sql = postgres(url, { max: 1, onnotice: () => undefined });
  await sql`analyze`.finally(() => sql.end({ timeout: 5 }));
  const seedSec = (performance.now() - started) / 1000;
  return { url, ...(await counts(url)), seedSec };
}
