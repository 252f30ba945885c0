import { bytea } from './bytea.js';
import { index, pgTable, text, timestamp, uuid } from 'drizzle-orm/pg-core';
import { principals } from './principals.js';

/**
 * Customers. Sensitive columns are never stored in the clear: each has a
 * ciphertext (`*_enc`, AES-256-GCM under the customer's data key), a masked
 * rendition computed at write time (`*_masked`), and phone/email a blind index
 * (`*_bidx`, keyed HMAC of the normalized value) for exact lookup.
 */
export const customers = pgTable(
  'customers',
  {
    id: uuid('id').primaryKey(),
    name: text('name').notNull(),
    nameMasked: text('name_masked').notNull(),
    phoneEnc: bytea('phone_enc'),
    phoneMasked: text('phone_masked'),
    phoneBidx: bytea('phone_bidx'),
    emailEnc: bytea('email_enc'),
    emailMasked: text('email_masked'),
    emailBidx: bytea('email_bidx'),
    addressEnc: bytea('address_enc'),
    addressMasked: text('address_masked'),
    province: text('province').notNull(),
    city: text('city').notNull(),
    idNumberEnc: bytea('id_number_enc'),
    idNumberMasked: text('id_number_masked'),
    birthDateEnc: bytea('birth_date_enc'),
    birthDateMasked: text('birth_date_masked'),
    gender: text('gender'),
    tier: text('tier').notNull(),
    segment: text('segment').notNull(),
    ownerId: text('owner_id')
      .notNull()
      .references(() => principals.id),
    department: text('department').notNull(),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('customers_owner_idx').on(t.ownerId, t.id),
    index('customers_department_idx').on(t.department, t.id),
    index('customers_phone_bidx_idx').on(t.phoneBidx),
    index('customers_email_bidx_idx').on(t.emailBidx),
    index('customers_created_idx').on(t.createdAt, t.id),
  ],
);

/**
 * One data key per customer, wrapped by a key-encryption key (`kek_id`).
 * Deleting the row (crypto-shredding) makes every ciphertext of the customer
 * unreadable, backups included.
 */
export const customerKeys = pgTable('customer_keys', {
  customerId: uuid('customer_id')
    .primaryKey()
    .references(() => customers.id, { onDelete: 'cascade' }),
  kekId: text('kek_id').notNull(),
  wrappedKey: bytea('wrapped_key').notNull(),
  createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
  rotatedAt: timestamp('rotated_at', { withTimezone: true }),
});

/** Consent per purpose; a withdrawn consent keeps its row (withdrawn_at set). */
export const consents = pgTable(
  'consents',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    customerId: uuid('customer_id')
      .notNull()
      .references(() => customers.id, { onDelete: 'cascade' }),
    purpose: text('purpose').notNull(),
    grantedAt: timestamp('granted_at', { withTimezone: true }).notNull(),
    withdrawnAt: timestamp('withdrawn_at', { withTimezone: true }),
  },
  (t) => [index('consents_customer_idx').on(t.customerId, t.purpose)],
);

