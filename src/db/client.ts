import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import * as schema from './schema/index.js';

export type Schema = typeof schema;
/** One drizzle type over every driver: the rest of the code never knows which database it talks to. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

export type DbConfig =
  | { kind: 'pglite'; dataDir: string }
  | { kind: 'postgres'; url: string; poolMax: number; statementTimeoutMs?: number };

export interface DbHandle {
  db: Db;
  kind: DbConfig['kind'];
  /** SQL statements sent since start (for metrics and the benchmark's statements-per-request). */
  stats: { statements: number };
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Arbitrary fixed key of the advisory lock held while migrating. */
const MIGRATION_LOCK = 0x637573746f73; // "custos"

const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** Opens PGlite (DATA_DIR, or `memory://`) or a postgres.js pool behind the same drizzle type. */
export async function createDb(config: DbConfig): Promise<DbHandle> {
  switch (config.kind) {
    case 'pglite': {
      const client = await PGlite.create(config.dataDir);
      const stats = { statements: 0 };
      countStatements(client, stats);
      const db = drizzlePglite(client, { schema });
      return {
        db: db as unknown as Db,
        kind: 'pglite',
        stats,
        migrate: () => migratePglite(db, { migrationsFolder }),
        ping: async () => {
          await client.query('select 1');
        },
        close: () => client.close(),
      };
    }
    case 'postgres': {
      const stats = { statements: 0 };
      const client = postgres(config.url, {
        max: config.poolMax,
        onnotice: () => undefined,
        // Fail fast when the database is down instead of hanging until the HTTP timeout.
        connect_timeout: 5,
        idle_timeout: 60,
        debug: () => {
          stats.statements += 1;
        },
        connection: { application_name: 'custos', statement_timeout: config.statementTimeoutMs ?? 10_000 },
      });
      const db = drizzlePostgres(client, { schema });
      return {
        db: db as unknown as Db,
        kind: 'postgres',
        stats,
        migrate: async () => {
          // drizzle's migrator takes no lock: replicas starting beside the migration Job must not race.
          const lock = await client.reserve();
          try {
            await lock`select pg_advisory_lock(${MIGRATION_LOCK})`;
            await migratePostgres(db, { migrationsFolder });
          } finally {
            await lock`select pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => undefined);
            lock.release();
          }
        },
        ping: async () => {
          await client`select 1`;
        },
        close: () => client.end({ timeout: 5 }),
      };
    }
  }
}

/** PGlite has no query hook: count at its two entry points (this instance only). */
function countStatements(client: PGlite, stats: { statements: number }): void {
  const query = client.query.bind(client);
  const exec = client.exec.bind(client);
  client.query = ((...args: Parameters<typeof query>) => {
    stats.statements += 1;
    return query(...args);
  }) as typeof client.query;
  client.exec = ((...args: Parameters<typeof exec>) => {
    stats.statements += 1;
    return exec(...args);
  });
}
