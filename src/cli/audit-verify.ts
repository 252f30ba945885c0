import { verifyChain } from '../audit/verify.js';
import { loadConfig } from '../config.js';
import { createDb } from '../db/client.js';
import { describeFailure } from './describe-failure.js';

/**
 * `npm run audit:verify`: recomputes the audit hash chain of the configured
 * database. Exit 0 intact, 1 broken (tampering or loss), 2 could not check.
 */
async function main(): Promise<number> {
  const config = loadConfig();
  const handle = await createDb(config.database);
  try {
    // Idempotent; on a database never migrated it yields an empty, intact chain.
    await handle.migrate();
    const verdict = await verifyChain(handle.db);
    if (verdict.ok) {
      console.log(`audit chain intact: ${verdict.count} records (last seq ${verdict.lastSeq})`);
      return 0;
    }
    console.log(`audit chain BROKEN at seq ${verdict.seq}: ${verdict.problem}`);
    return 1;
  } finally {
    await handle.close();
  }
}


main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`audit:verify: ${describeFailure(e)}`);
    process.exit(2);
  },
);
