import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { createDb } from '../db/client.js';
import { DEFAULT_SEED, MAX_CUSTOMERS } from '../db/seed/generate.js';
import { seedDatabase, type SeedSummary } from '../db/seed/load.js';
import { integerOption, UsageError } from './args.js';

const usage = `usage: npm run db:seed -- [--customers N] [--seed S] [--reset]
  --customers N  customers to generate, 1..${MAX_CUSTOMERS} (default 300), with about 10 orders each
  --seed S       generator seed, 0..4294967295 (default ${DEFAULT_SEED}); same seed, same data
  --reset        delete existing customer data first (otherwise an already seeded database is left alone)`;

interface Args {
  customers: number;
  seed: number;
  reset: boolean;
}


function parse(argv: string[]): Args {
  let values: { customers?: string; seed?: string; reset?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { customers: { type: 'string' }, seed: { type: 'string' }, reset: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    customers: integerOption('customers', values.customers, 300, 1, MAX_CUSTOMERS),
    seed: integerOption('seed', values.seed, DEFAULT_SEED, 0, 2 ** 32 - 1),
    reset: values.reset ?? false,
  };
}

/** A progress line every 5%: rewritten in place on a terminal, one line each otherwise (CI logs). */
function progressReporter(): (done: number, total: number) => void {
  let shown = -1;
  return (done, total) => {
    const step = Math.floor((done / total) * 20);
    if (step === shown) return;
    shown = step;
    const line = `seeding: ${String(step * 5).padStart(3)}% (${done}/${total} customers)`;
    if (process.stderr.isTTY) process.stderr.write(`\r${line}${done === total ? '\n' : ''}`);
    else process.stderr.write(`${line}\n`);
  };
}

function report(summary: SeedSummary, kind: string): void {
  if (summary.skipped) {
    console.log(`customers already present in the ${kind} database: nothing seeded (use --reset to reseed)`);
    return;
  }
  const seconds = (summary.ms / 1000).toFixed(1);
  console.log(
    `seeded ${kind} database in ${seconds} s (seed ${summary.plan.seed}): ${summary.principals} principals, ` +
      `${summary.customers} customers, ${summary.orders} orders, ${summary.interactions} interactions, ${summary.consents} consents`,
  );
}

async function main(argv: string[]): Promise<number> {
  const args = parse(argv);
  const config = loadConfig();
  const handle = await createDb(config.database);
  try {
    await handle.migrate();
    const summary = await seedDatabase(handle, config.keys, { ...args, onProgress: progressReporter() });
    report(summary, handle.kind);
    return 0;
  } finally {
    await handle.close();
  }
}

/** drizzle puts the SQL and every parameter in its message: keep its first line and the driver's reason (the cause). */
function messageOf(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  if (!(error.cause instanceof Error)) return error.message;
  return `${error.message.split('\n')[0]}: ${error.cause.message}`;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Messages only, never a stack trace: expected failures (bad arguments, configuration, connection) read well alone.
    console.error(messageOf(error));
    if (error instanceof UsageError) console.error(usage);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
