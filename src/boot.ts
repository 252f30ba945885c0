import { loadBundle, maskStrategy, type PolicyBundle } from './authz/policy/bundle.js';
import { storageProblems } from './authz/storage.js';
import type { Config } from './config.js';
import { createDb, type DbHandle } from './db/client.js';
import { seedDatabase } from './db/seed/load.js';
import { createApp, type App } from './server/app.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { Purpose } from './modules/common/common.types.js';

export interface Running {
  app: App;
  db: DbHandle;
  bundle: PolicyBundle;
  logger: Logger;
  port: number;
  stop(): Promise<void>;
}

export class StartupError extends Error {
  override name = 'StartupError';
}

/** Refuses a bundle that the stored data or the GraphQL schema cannot honour. */
function checkBundleFits(bundle: PolicyBundle): void {
  const problems = storageProblems((s, f) => maskStrategy(bundle, s, f));
  const enumPurposes = new Set<string>(Object.values(Purpose));
  for (const p of bundle.purposes) if (!enumPurposes.has(p)) problems.push(`purposes.yaml: ${p} is not in the GraphQL Purpose enum`);
  if (problems.length > 0) throw new StartupError(`policy bundle does not fit the stored data:\n  ${problems.join('\n  ')}`);
}

/** config → db (migrated, demo-seeded on first start) → policies → server → listening. */
export async function start(config: Config, opts: { demoCustomers?: number; logger?: Logger } = {}): Promise<Running> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const bundle = await loadBundle(config.policyDir);
  checkBundleFits(bundle);
  const db = await createDb(config.database);
  try {
    await db.migrate();
    if (config.seedDemo === 'auto') {
      const summary = await seedDatabase(db, config.keys, { customers: opts.demoCustomers ?? 300 });
      if (!summary.skipped) logger.info({ customers: summary.customers }, 'seeded demo data');
    }
    const app = await createApp({ config, db, bundle, logger });
    const port = await app.listen(config.port, config.host);
    logger.info({ port, database: db.kind, policyVersion: bundle.version }, 'custos listening');
    return {
      app,
      db,
      bundle,
      logger,
      port,
      stop: async () => {
        await app.close();
        await db.close();
      },
    };
  } catch (e) {
    await db.close();
    throw e;
  }
}
