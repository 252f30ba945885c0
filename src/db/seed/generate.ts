import type { Principal } from '../../authz/principal.js';
import { demoPrincipals } from '../../authz/policy/demo-principals.js';
import type { CustomerPlain } from '../../crypto/customer-record.js';
import { consentsFor, interactionsFor, ordersFor, type ConsentRow, type InteractionRow, type OrderRow } from './activity.js';
import { customerAt, DEFAULT_SEED, syntheticReps, type SeedOwner, type SeedPlan } from './customer.js';

/**
 * The deterministic seed generator. Everything streams: a 100k-customer seed
 * with a million orders is produced one customer at a time, and any single
 * customer can be regenerated from (plan, index) alone.
 */
export { customerAt, DEFAULT_SEED, idCheckDigit, MAX_CUSTOMERS, type SeedOwner, type SeedPlan } from './customer.js';
export { consentsFor, interactionsFor, ordersFor, type ConsentRow, type InteractionRow, type OrderRow } from './activity.js';

/** One synthetic sales rep per this many customers, on top of the demo reps. */
const CUSTOMERS_PER_SYNTHETIC_REP = 500;

export interface GenerateOptions extends SeedPlan {
  count: number;
}

/** A customer and everything that hangs off it; the unit the loader writes. */
export interface CustomerBundle {
  index: number;
  customer: CustomerPlain;
  orders: OrderRow[];
  interactions: InteractionRow[];
  consents: ConsentRow[];
}

/** The principals a seed of `customers` customers writes: the demo set plus synthetic reps for big seeds. */
export function seedPrincipals(customers: number, seed: number = DEFAULT_SEED): Principal[] {
  const extra = Math.floor(customers / CUSTOMERS_PER_SYNTHETIC_REP);
  return [...demoPrincipals, ...syntheticReps(seed, extra)];
}

/** Active sales reps with a department: the only principals who own customers. */
export function ownersOf(principals: readonly Principal[]): SeedOwner[] {
  return principals
    .filter((p) => p.status === 'active' && p.roles.includes('sales_rep') && p.department !== null)
    .map((p) => ({ id: p.id, department: p.department! }));
}

/** The plan `seedDatabase` uses for a seed of this size, so tests can regenerate what it wrote. */
export function seedPlan(opts: { customers: number; seed?: number; asOf?: Date }): SeedPlan {
  const seed = opts.seed ?? DEFAULT_SEED;
  return { seed, owners: ownersOf(seedPrincipals(opts.customers, seed)), asOf: opts.asOf ?? new Date() };
}

export function* generateCustomers(opts: GenerateOptions): Generator<CustomerPlain> {
  for (let i = 0; i < opts.count; i++) yield customerAt(opts, i);
}

export function* generateSeed(opts: GenerateOptions): Generator<CustomerBundle> {
  for (let index = 0; index < opts.count; index++) {
    const customer = customerAt(opts, index);
    yield {
      index,
      customer,
      orders: ordersFor(opts, index, customer),
      interactions: interactionsFor(opts, index, customer),
      consents: consentsFor(opts, index, customer),
    };
  }
}

export function* generateOrders(opts: GenerateOptions): Generator<OrderRow> {
  for (let i = 0; i < opts.count; i++) yield* ordersFor(opts, i, customerAt(opts, i));
}

export function* generateInteractions(opts: GenerateOptions): Generator<InteractionRow> {
  for (let i = 0; i < opts.count; i++) yield* interactionsFor(opts, i, customerAt(opts, i));
}

export function* generateConsents(opts: GenerateOptions): Generator<ConsentRow> {
  for (let i = 0; i < opts.count; i++) yield* consentsFor(opts, i, customerAt(opts, i));
}
