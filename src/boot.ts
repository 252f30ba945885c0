// First: start() is an entry point too (tests, tools), and the GraphQL types need the polyfill before they load.
import 'reflect-metadata';
import { loadBundle, maskStrategy, type PolicyBundle } from './authz/policy/bundle.js';
import { storageProblems } from './authz/storage.js';
import type { Config } from './config.js';
import { connectProblem, createDb, type DbHandle } from './db/client.js';
import { seedDatabase } from './db/seed/load.js';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { createHmac } from 'node:crypto';
import { AuditLog } from './audit/store.js';
import { createApp, type App } from './server/app.js';
import { Metrics } from './server/metrics.js';
import { Telemetry } from './telemetry/tracing.js';
import { createLogger, type Logger } from './telemetry/logger.js';
import { Purpose } from './modules/common/common.types.js';

export interface Running {
  app: App;
  db: DbHandle;
  bundle: PolicyBundle;
  logger: Logger;
  audit: AuditLog | null;
  telemetry: Telemetry;
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
export interface StartOptions {
  demoCustomers?: number;
  logger?: Logger;
  /** Extra span exporter (tests use an in-memory one). */
  spanExporter?: SpanExporter;
}

export async function start(config: Config, opts: StartOptions = {}): Promise<Running> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  const bundle = await loadBundle(config.policyDir, config.datasetDir);
  checkBundleFits(bundle);
  const db = await createDb(config.database);
  try {
    await db.migrate().catch((e: unknown) => {
      // The first use of the database: say plainly that it cannot be reached (or trusted), and which settings to check.
      const problem = connectProblem(e, config.database);
      throw problem ? new StartupError(problem, { cause: e }) : e;
    });
    if (config.seedDemo === 'auto') {
      const summary = await seedDatabase(db, config.keys, { customers: opts.demoCustomers ?? 300 });
      if (!summary.skipped) logger.info({ customers: summary.customers }, 'seeded demo data');
    }
    const telemetry = new Telemetry(config.tracing, {
      ...(opts.spanExporter ? { exporter: opts.spanExporter } : {}),
      pseudonymKey: createHmac('sha256', config.keys.blindIndexKey).update('custos/span-pseudonym').digest(),
    });
    const audit = config.auditMode === 'strict' ? new AuditLog(db.db, { logger }) : null;
    const metrics = new Metrics({
      statements: () => db.stats.statements,
      pool: () => db.poolStats(),
      ...(audit ? { auditLog: () => audit.stats() } : {}),
      spans: () => telemetry.spanStats(),
    });
    const app = await createApp({ config, db, bundle, logger, telemetry, audit, metrics });
    const port = await app.listen(config.port, config.host);
    logger.info({ port, scheme: app.scheme, database: db.kind, policyVersion: bundle.version }, 'custos listening');
    return {
      app,
      db,
      bundle,
      logger,
      audit,
      telemetry,
      port,
      // Drain, then flush what the drained requests left: audit records, spans; then the pool.
      stop: async () => {
        await app.drain();
        await audit?.close();
        await telemetry.shutdown();
        await db.close();
      },
    };
  } catch (e) {
    await db.close();
    throw e;
  }
}
