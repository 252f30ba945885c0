import { ConfigError, loadConfig } from '../config.js';
import { createDb } from '../db/client.js';

/** `npm run db:migrate`: applies drizzle/ migrations to the configured database. */
async function main(): Promise<number> {
  const config = loadConfig();
  const db = await createDb(config.database);
  try {
    await db.migrate();
    console.log(`migrated (${db.kind})`);
    return 0;
  } finally {
    await db.close();
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`db:migrate: ${e instanceof ConfigError ? e.message : `failed (${(e as Error).name})`}`);
    process.exit(1);
  },
);
