import type { CustomerPlain } from '../../crypto/customer-record.js';
import type { consents, interactions, orders } from '../schema/index.js';
import { INTERACTION_SUMMARIES, PRODUCTS } from './china.js';
import { DAY_MS, type SeedPlan } from './customer.js';
import { int, pick, Stream, streamFor, uuidFor, weighted, type Rng } from './random.js';

export type OrderRow = typeof orders.$inferInsert;
export type InteractionRow = typeof interactions.$inferInsert;
export type ConsentRow = typeof consents.$inferInsert;

/** What a customer's history may span: from its creation (at most three years back) to the plan's asOf. */
function window(plan: SeedPlan, customer: CustomerPlain, years: number) {
  const end = plan.asOf.getTime();
  const created = customer.createdAt?.getTime() ?? end - years * 365 * DAY_MS;
  return { start: Math.max(created, end - years * 365 * DAY_MS), end };
}

function instant(rng: Rng, span: { start: number; end: number }): Date {
  return new Date(span.start + Math.floor(rng() * (span.end - span.start)));
}

/** Yuan with two decimals from integer cents, so no float rounding reaches the numeric column. */
function yuan(cents: number): string {
  return `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`;
}

/** Recent orders are still moving; old ones ended delivered, refunded or cancelled. */
function statusOf(rng: Rng, ageDays: number): string {
  if (ageDays < 2) return weighted(rng, [['paid', 6], ['shipped', 4]]);
  if (ageDays < 10) return weighted(rng, [['paid', 1], ['shipped', 10], ['delivered', 8], ['cancelled', 1]]);
  return weighted(rng, [['delivered', 82], ['refunded', 10], ['cancelled', 8]]);
}

/** Better tiers buy more often: 0–24 orders, about 10 on average. */
function orderCount(rng: Rng, tier: string): number {
  const bonus = tier === 'platinum' ? int(rng, 2, 4) : tier === 'gold' ? int(rng, 0, 3) : 0;
  return Math.floor(rng() * 11) + Math.floor(rng() * 11) + bonus;
}

/** The orders of customer `index` (whose plain values are `customer`), oldest first. */
export function ordersFor(plan: SeedPlan, index: number, customer: CustomerPlain): OrderRow[] {
  const rng = streamFor(plan.seed, Stream.orders, index);
  const span = window(plan, customer, 3);
  const count = orderCount(rng, customer.tier);
  const rows = Array.from({ length: count }, (_, k): OrderRow => {
    const [product, low, high] = pick(rng, PRODUCTS);
    const quantity = weighted(rng, [[1, 80], [2, 15], [3, 5]]);
    const discount = rng() < 0.3 ? 0.8 + rng() * 0.15 : 1;
    const placedAt = instant(rng, span);
    return {
      id: uuidFor(plan.seed, 'order', index, k),
      customerId: customer.id,
      amount: yuan(Math.round(int(rng, low, high) * 100 * quantity * discount)),
      currency: 'CNY',
      product,
      channel: weighted(rng, [['online', 45], ['app', 30], ['store', 18], ['phone', 7]]),
      status: statusOf(rng, (span.end - placedAt.getTime()) / DAY_MS),
      placedAt,
    };
  });
  return rows.sort((a, b) => a.placedAt.getTime() - b.placedAt.getTime());
}

/** 0–6 touch points by the owning rep, about 3 on average, with personal-data-free summaries. */
export function interactionsFor(plan: SeedPlan, index: number, customer: CustomerPlain): InteractionRow[] {
  const rng = streamFor(plan.seed, Stream.interactions, index);
  const span = window(plan, customer, 3);
  return Array.from({ length: int(rng, 0, 6) }, (_, k): InteractionRow => {
    const channel = weighted(rng, [['call', 40], ['wechat', 35], ['email', 15], ['visit', 10]] as const);
    const template = pick(rng, INTERACTION_SUMMARIES[channel]);
    return {
      id: uuidFor(plan.seed, 'interaction', index, k),
      customerId: customer.id,
      principalId: customer.ownerId,
      channel,
      summary: template.replace('{product}', pick(rng, PRODUCTS)[0]),
      occurredAt: instant(rng, span),
    };
  });
}

const PURPOSES = [['contact', 0.95], ['marketing', 0.6], ['analytics', 0.7]] as const;

/** One row per purpose the customer ever agreed to; some were later withdrawn (the row stays). */
export function consentsFor(plan: SeedPlan, index: number, customer: CustomerPlain): ConsentRow[] {
  const rng = streamFor(plan.seed, Stream.consents, index);
  const span = window(plan, customer, 5);
  const rows: ConsentRow[] = [];
  PURPOSES.forEach(([purpose, share], k) => {
    if (rng() >= share) return;
    const grantedAt = instant(rng, span);
    const withdrawn = rng() < 0.15;
    rows.push({
      id: uuidFor(plan.seed, 'consent', index, k),
      customerId: customer.id,
      purpose,
      grantedAt,
      withdrawnAt: withdrawn ? instant(rng, { start: grantedAt.getTime(), end: span.end }) : null,
    });
  });
  return rows;
}
