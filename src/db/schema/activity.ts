import { index, numeric, pgEnum, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { customers } from './customers.js';
import { principals } from './principals.js';

export const interactionChannel = pgEnum('interaction_channel', ['call', 'email', 'wechat', 'visit']);

export const orders = pgTable(
  'orders',
  {
    id: uuid('id').primaryKey(),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    amount: numeric('amount', { precision: 12, scale: 2 }).notNull(),
    currency: text('currency').notNull().default('CNY'),
    product: text('product').notNull(),
    channel: text('channel').notNull(),
    status: text('status').notNull(),
    placedAt: timestamp('placed_at', { withTimezone: true }).notNull(),
  },
  (t) => [index('orders_customer_placed_idx').on(t.customerId, t.placedAt.desc(), t.id.desc())],
);

export const interactions = pgTable(
  'interactions',
  {
    id: uuid('id').primaryKey(),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    principalId: text('principal_id')
      .notNull()
      .references(() => principals.id),
    channel: interactionChannel('channel').notNull(),
    summary: text('summary').notNull(),
    occurredAt: timestamp('occurred_at', { withTimezone: true }).notNull(),
  },
  (t) => [
    index('interactions_customer_occurred_idx').on(t.customerId, t.occurredAt.desc(), t.id.desc()),
    index('interactions_principal_idx').on(t.principalId),
  ],
);
