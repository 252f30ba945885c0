import { sql } from 'drizzle-orm';
import { sealCustomer, type CryptoKeys } from '../../crypto/customer-record.js';
import type { DbHandle } from '../client.js';
import { consents, customerKeys, customers, interactions, orders, principals } from '../schema/index.js';
import { insertJsonRows } from './bulk.js';
import { generateSeed, MAX_CUSTOMERS, seedPlan, seedPrincipals, type CustomerBundle, type SeedPlan } from './generate.js';

export interface SeedOptions {
  customers: number;
  seed?: number;
  /** Wipe customer data (customers and everything hanging off them) before seeding. */
  reset?: boolean;
  /** Timestamps are generated before this instant (default: now). */
  asOf?: Date;
  onProgress?: (done: number, total: number) => void;
}

export interface SeedSummary {
  /** True when customers already existed and nothing was written. */
  skipped: boolean;
  /** What regenerates the seeded plain values: `customerAt(summary.plan, i)`. */
  plan: SeedPlan;
  /** Rows generated and written (ids that already existed are skipped by the database, not subtracted here). */
  principals: number;
  customers: number;
  orders: number;
  interactions: number;
  consents: number;
  ms: number;
}

/**
 * Customers per transaction. Big enough that statement overhead vanishes
 * (about 10k order rows per statement), small enough that a batch is a few
 * MB of JSON and a failure loses little.
 */
const BATCH_CUSTOMERS = 1000;
/** Customers sealed between yields to the event loop, so in-flight batches keep talking to the database. */
const YIELD_EVERY = 100;

interface Batch {
  /** Index of the batch's first customer, to name a failed batch without naming anyone in it. */
  first: number;
  customers: Array<typeof customers.$inferInsert>;
  keys: Array<typeof customerKeys.$inferInsert>;
  orders: Array<typeof orders.$inferInsert>;
  interactions: Array<typeof interactions.$inferInsert>;
  consents: Array<typeof consents.$inferInsert>;
}

const emptyBatch = (first: number): Batch => ({ first, customers: [], keys: [], orders: [], interactions: [], consents: [] });

/** A batch that could not be written. The message keeps the database's reason but never the statement's parameters, which hold customer data. */
export class SeedError extends Error {
  override name = 'SeedError';
}

function reasonOf(error: unknown): string {
  // drizzle wraps the driver error and puts the SQL and all parameters in its own message; the reason is the cause's.
  const inner = error instanceof Error && error.cause instanceof Error ? error.cause : error;
  return inner instanceof Error ? inner.message : String(inner);
}

function addBundle(batch: Batch, keys: CryptoKeys, bundle: CustomerBundle): void {
  const { row, key } = sealCustomer(keys, bundle.customer);
  batch.customers.push(row);
  batch.keys.push({ ...key, createdAt: bundle.customer.createdAt });
  batch.orders.push(...bundle.orders);
  batch.interactions.push(...bundle.interactions);
  batch.consents.push(...bundle.consents);
}

/** Seals customers batch by batch, yielding to the event loop now and then (sealing is CPU-bound). */
async function* batches(plan: SeedPlan, count: number, keys: CryptoKeys): AsyncGenerator<Batch> {
  let batch = emptyBatch(0);
  for (const bundle of generateSeed({ ...plan, count })) {
    addBundle(batch, keys, bundle);
    if (batch.customers.length % YIELD_EVERY === 0) await new Promise((resolve) => setImmediate(resolve));
    if (batch.customers.length === BATCH_CUSTOMERS) {
      yield batch;
      batch = emptyBatch(bundle.index + 1);
    }
  }
  if (batch.customers.length > 0) yield batch;
}

/** One transaction per batch: a customer is never stored without its key or its history. */
async function writeBatch(handle: DbHandle, batch: Batch): Promise<void> {
  try {
    await handle.db.transaction(async (tx) => {
      // A crash may lose the last few batches but never corrupts anything, and a seed can be rerun: skip the fsync wait.
      if (handle.kind === 'postgres') await tx.execute(sql`set local synchronous_commit = off`);
      await insertJsonRows(tx, customers, batch.customers);
      await insertJsonRows(tx, customerKeys, batch.keys);
      await insertJsonRows(tx, orders, batch.orders);
      await insertJsonRows(tx, interactions, batch.interactions);
      await insertJsonRows(tx, consents, batch.consents);
    });
  } catch (error) {
    const last = batch.first + batch.customers.length - 1;
    throw new SeedError(`writing customers ${batch.first}..${last} failed: ${reasonOf(error)}`);
  }
}

/**
 * Writes batches while the next one is being sealed: on PostgreSQL two
 * transactions in flight keep both the database and Node busy; PGlite has one
 * connection, so there it is one at a time.
 */
async function writeAll(handle: DbHandle, source: AsyncIterable<Batch>, onWritten: (b: Batch) => void) {
  const depth = handle.kind === 'postgres' ? 2 : 1;
  const inFlight: Array<Promise<void>> = [];
  let failure: { error: unknown } | undefined;
  for await (const batch of source) {
    if (failure) break;
    // Caught at once so a failing batch never surfaces as an unhandled rejection while an older one is awaited.
    inFlight.push(
      writeBatch(handle, batch)
        .then(() => onWritten(batch))
        .catch((error: unknown) => void (failure ??= { error })),
    );
    if (inFlight.length >= depth) await inFlight.shift();
  }
  await Promise.all(inFlight);
  if (failure) throw failure.error;
}

async function hasCustomers(handle: DbHandle): Promise<boolean> {
  const rows = await handle.db.select({ id: customers.id }).from(customers).limit(1);
  return rows.length > 0;
}

/** Empties the customer tables; CASCADE reaches any table that references customers, which is customer data too. */
async function resetCustomerData(handle: DbHandle): Promise<void> {
  await handle.db.execute(sql`truncate table ${consents}, ${interactions}, ${orders}, ${customerKeys}, ${customers} cascade`);
}

/**
 * Seeds demo principals (plus synthetic reps for big seeds) and `customers`
 * deterministic customers, sealed with `keys`, with their orders,
 * interactions and consents. Does nothing if customers exist, unless `reset`.
 */
export async function seedDatabase(handle: DbHandle, keys: CryptoKeys, opts: SeedOptions): Promise<SeedSummary> {
  if (!Number.isInteger(opts.customers) || opts.customers < 0 || opts.customers > MAX_CUSTOMERS) {
    throw new RangeError(`customers must be an integer from 0 to ${MAX_CUSTOMERS}`);
  }
  const started = performance.now();
  const plan = seedPlan(opts);
  const summary: SeedSummary = { skipped: false, plan, principals: 0, customers: 0, orders: 0, interactions: 0, consents: 0, ms: 0 };
  if (opts.reset) await resetCustomerData(handle);
  else if (await hasCustomers(handle)) return { ...summary, skipped: true, ms: performance.now() - started };

  const people = seedPrincipals(opts.customers, plan.seed);
  await handle.db.insert(principals).values(people).onConflictDoNothing();
  summary.principals = people.length;

  await writeAll(handle, batches(plan, opts.customers, keys), (batch) => {
    summary.customers += batch.customers.length;
    summary.orders += batch.orders.length;
    summary.interactions += batch.interactions.length;
    summary.consents += batch.consents.length;
    opts.onProgress?.(summary.customers, opts.customers);
  });
  return { ...summary, ms: performance.now() - started };
}
