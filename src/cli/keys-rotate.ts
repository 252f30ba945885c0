import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import type { Keyring } from '../crypto/envelope.js';
import { createDb, type Db } from '../db/client.js';
import {
  assertRotatable,
  DEFAULT_BATCH_SIZE,
  MAX_BATCH_SIZE,
  pendingByKek,
  rotateKeys,
  RotationError,
  unknownKeks,
  type RotationProgress,
  type RotationSummary,
} from '../crypto/rotate.js';
import { describeFailure } from './describe-failure.js';
import { integerOption, UsageError } from './args.js';

const usage = `usage: npm run keys:rotate -- [--batch N] [--pause MS] [--dry-run]
  Re-wraps every data key not wrapped by KEK_ACTIVE_ID under it, online and in
  batches; the old and the active key must both be in KEYRING. Interrupting is
  safe: run it again to continue.
  --batch N   data keys per transaction, 1..${MAX_BATCH_SIZE} (default ${DEFAULT_BATCH_SIZE})
  --pause MS  pause between batches, 0..60000 (default 0), to spare a busy database
  --dry-run   count the keys that would be re-wrapped, per key-encryption key; change nothing`;

interface Args {
  batch: number;
  pauseMs: number;
  dryRun: boolean;
}


function parse(argv: string[]): Args {
  let values: { batch?: string; pause?: string; 'dry-run'?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { batch: { type: 'string' }, pause: { type: 'string' }, 'dry-run': { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  return {
    batch: integerOption('batch', values.batch, DEFAULT_BATCH_SIZE, 1, MAX_BATCH_SIZE),
    pauseMs: integerOption('pause', values.pause, 0, 0, 60_000),
    dryRun: values['dry-run'] ?? false,
  };
}

const rate = (done: number, ms: number) => (ms > 0 ? Math.round((done * 1000) / ms) : 0);

/** Progress on stderr: rewritten in place on a terminal; elsewhere (Job logs) a line every 10% or 10 s. */
function progressReporter(): (p: RotationProgress) => void {
  let lastStep = -1;
  let lastAt = 0;
  return ({ done, total, elapsedMs }) => {
    const percent = total > 0 ? Math.min(100, Math.floor((done / total) * 100)) : 100;
    const line = `keys:rotate: ${done}/${total} data keys re-wrapped (${percent}%), ${rate(done, elapsedMs)} keys/s`;
    if (process.stderr.isTTY) {
      process.stderr.write(`\r${line}${done >= total ? '\n' : ''}`);
      return;
    }
    const step = Math.floor(percent / 10);
    if (step === lastStep && elapsedMs - lastAt < 10_000 && done < total) return;
    lastStep = step;
    lastAt = elapsedMs;
    process.stderr.write(`${line}\n`);
  };
}

const perKek = (m: ReadonlyMap<string, number>) => [...m].map(([kekId, n]) => `${kekId}: ${n}`).join(', ');

/** The final summary; the exit code says whether every key is now under the active KEK. */
function report(s: RotationSummary): number {
  const seconds = (s.elapsedMs / 1000).toFixed(1);
  if (s.rewrapped === 0 && s.remaining === 0) {
    console.log(`every data key is already wrapped by ${s.activeKekId}: nothing to rotate`);
    return 0;
  }
  console.log(
    `re-wrapped ${s.rewrapped} data keys under ${s.activeKekId} in ${seconds} s ` +
      `(${rate(s.rewrapped, s.elapsedMs)} keys/s, ${s.batches} batches; at start ${perKek(s.pendingAtStart)}); ${s.remaining} left`,
  );
  if (s.remaining === 0) {
    console.log(`0 data keys left under other key-encryption keys: only ${s.activeKekId} is needed in KEYRING now`);
    return 0;
  }
  console.error(
    s.interrupted
      ? `keys:rotate: interrupted with ${s.remaining} data keys left: run keys:rotate again to continue`
      : `keys:rotate: ${s.remaining} data keys stayed locked by other transactions: run keys:rotate again`,
  );
  return 1;
}

/** Counts per KEK what a run would re-wrap; exit 1 if some of it could not be. */
async function dryRun(db: Db, keyring: Keyring): Promise<number> {
  const pending = await pendingByKek(db, keyring.activeKekId);
  const total = [...pending.values()].reduce((a, b) => a + b, 0);
  console.log(`dry run: ${total} data keys would be re-wrapped under ${keyring.activeKekId}${total > 0 ? ':' : ''}`);
  const missing = new Set(unknownKeks(keyring, pending).map(([kekId]) => kekId));
  for (const [kekId, n] of pending) console.log(`  ${kekId}: ${n}${missing.has(kekId) ? ' (not in KEYRING: cannot be re-wrapped)' : ''}`);
  assertRotatable(keyring, pending);
  return 0;
}

async function main(argv: string[]): Promise<number> {
  const args = parse(argv);
  const config = loadConfig();
  const handle = await createDb(config.database);
  try {
    if (args.dryRun) return await dryRun(handle.db, config.keys.keyring);
    const controller = new AbortController();
    const stop = () => {
      if (controller.signal.aborted) return;
      process.stderr.write('\nkeys:rotate: stopping after the batch under way\n');
      controller.abort();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    const summary = await rotateKeys(handle.db, config.keys.keyring, {
      batchSize: args.batch,
      pauseMs: args.pauseMs,
      signal: controller.signal,
      onProgress: progressReporter(),
    });
    return report(summary);
  } finally {
    await handle.close();
  }
}


main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(`keys:rotate: ${describeFailure(error, [RotationError, UsageError])}`);
    if (error instanceof UsageError) console.error(usage);
    process.exit(error instanceof UsageError ? 2 : 1);
  },
);
