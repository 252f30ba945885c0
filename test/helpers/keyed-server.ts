import 'reflect-metadata';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { signToken } from '../../src/auth/authenticate.js';
import { start, type Running } from '../../src/boot.js';
import { loadConfig, type Config } from '../../src/config.js';
import type { CustomerPlain } from '../../src/crypto/customer-record.js';
import { createDb, type Db, type DbHandle } from '../../src/db/client.js';
import { customerAt } from '../../src/db/seed/generate.js';
import { seedDatabase } from '../../src/db/seed/load.js';

/** KEYRING and KEK_ACTIVE_ID as a Secret would hold them. */
export type KeysEnv = { KEYRING: string; KEK_ACTIVE_ID: string };

export function keysEnv(keys: Record<string, Buffer>, active: string): KeysEnv {
  return { KEYRING: Object.entries(keys).map(([id, key]) => `${id}:${key.toString('base64')}`).join(','), KEK_ACTIVE_ID: active };
}

/**
 * A database that outlives the processes using it: a PGlite directory, or a
 * fresh PostgreSQL database when DATABASE_URL is set. `env` points a config at it.
 */
export interface ScratchDatabase {
  env: Record<string, string>;
  drop(): Promise<void>;
}

export async function scratchDatabase(): Promise<ScratchDatabase> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    const dir = await mkdtemp(join(tmpdir(), 'custos-keys-'));
    return { env: { DATA_DIR: dir }, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const name = `custos_k_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await admin(base, `CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  return { env: { DATABASE_URL: url.toString() }, drop: () => admin(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
}

async function admin(url: string, statement: string): Promise<void> {
  const client = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    await client.unsafe(statement);
  } finally {
    await client.end();
  }
}

function testConfig(database: ScratchDatabase, keys: KeysEnv): Config {
  return loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', SEED_DEMO: 'never', ...database.env, ...keys });
}

/** Migrates and seeds a scratch database with `customers` customers sealed under `keys`, then closes it. */
export async function seedScratch(database: ScratchDatabase, keys: KeysEnv, customers: number): Promise<CustomerPlain[]> {
  const config = testConfig(database, keys);
  const handle = await createDb(config.database);
  try {
    await handle.migrate();
    const summary = await seedDatabase(handle, config.keys, { customers });
    return Array.from({ length: summary.customers }, (_, i) => customerAt(summary.plan, i));
  } finally {
    await handle.close();
  }
}

/** A running server whose keys change the way a rollout changes them: stop, new KEYRING, start on the same data. */
export interface KeyedServer {
  readonly config: Config;
  readonly running: Running;
  readonly customers: CustomerPlain[];
  /** POSTs a query as a principal; the parsed body (data, errors, extensions). */
  gql(principalId: string, query: string, variables?: Record<string, unknown>): Promise<any>;
  restart(keys: KeysEnv): Promise<void>;
  /** A handle for library calls beside the server: its own on PGlite (one connection), another pool on PostgreSQL. */
  db(): Db;
  stop(): Promise<void>;
}

export async function startKeyedServer(keys: KeysEnv, customers: number): Promise<KeyedServer> {
  const database = await scratchDatabase();
  const seeded = await seedScratch(database, keys, customers);
  let config = testConfig(database, keys);
  let running = await start(config);
  let side: DbHandle | null = config.database.kind === 'postgres' ? await createDb(config.database) : null;
  return {
    get config() {
      return config;
    },
    get running() {
      return running;
    },
    customers: seeded,
    gql: async (principalId, query, variables) => {
      const token = await signToken(config.auth, principalId);
      const res = await fetch(`http://127.0.0.1:${running.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query, variables }),
      });
      return res.json();
    },
    restart: async (next) => {
      await running.stop();
      config = testConfig(database, next);
      running = await start(config);
    },
    db: () => (side ?? running.db).db,
    stop: async () => {
      await side?.close();
      side = null;
      await running.stop();
      await database.drop();
    },
  };
}
