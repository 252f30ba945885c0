import { verifyChain } from '../audit/verify.js';
import { ConfigError, loadConfig } from '../config.js';
import { createDb } from '../db/client.js';

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

/**
 * One line, no stack: config errors name their keys; anything else gives the
 * driver's reason (drizzle's own message quotes the SQL, so it is skipped).
 */
function describe(error: unknown): string {
  if (error instanceof ConfigError) {
    const [head, ...keys] = error.message.split('\n').map((line) => line.trim());
    return [head, keys.join('; ')].join(' ');
  }
  const cause = (error as { cause?: unknown } | null)?.cause ?? error;
  if (!(cause instanceof Error)) return `failed (${String(cause)})`;
  const code = (cause as { code?: unknown }).code;
  const reason = cause.message.split('\n')[0];
  return `failed: ${reason}${typeof code === 'string' && !reason?.includes(code) ? ` (${code})` : ''}`;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`audit:verify: ${describe(e)}`);
    process.exit(2);
  },
);
