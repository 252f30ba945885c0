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
  | { kind: 'postgres'; url: string; poolMax: number };

export interface DbHandle {
  db: Db;
  kind: DbConfig['kind'];
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** Opens PGlite (DATA_DIR, or `memory://`) or a postgres.js pool behind the same drizzle type. */
export async function createDb(config: DbConfig): Promise<DbHandle> {
  switch (config.kind) {
    case 'pglite': {
      const client = await PGlite.create(config.dataDir);
      const db = drizzlePglite(client, { schema });
      return {
        db: db as unknown as Db,
        kind: 'pglite',
        migrate: () => migratePglite(db, { migrationsFolder }),
        ping: async () => {
          await client.query('select 1');
        },
        close: () => client.close(),
      };
    }
    case 'postgres': {
      const client = postgres(config.url, {
        max: config.poolMax,
        onnotice: () => undefined,
        connection: { application_name: 'custos' },
      });
      const db = drizzlePostgres(client, { schema });
      return {
        db: db as unknown as Db,
        kind: 'postgres',
        migrate: () => migratePostgres(db, { migrationsFolder }),
        ping: async () => {
          await client`select 1`;
        },
        close: () => client.end({ timeout: 5 }),
      };
    }
  }
}
