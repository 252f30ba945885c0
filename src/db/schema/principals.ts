import { index, pgEnum, pgTable, text, timestamp } from 'drizzle-orm/pg-core';

export const principalStatus = pgEnum('principal_status', ['active', 'frozen', 'departed']);

/** People and service accounts that call custos; their roles decide what they see. */
export const principals = pgTable(
  'principals',
  {
    id: text('id').primaryKey(),
    displayName: text('display_name').notNull(),
    roles: text('roles').array().notNull(),
    department: text('department'),
    region: text('region'),
    status: principalStatus('status').notNull().default('active'),
    createdAt: timestamp('created_at', { withTimezone: true }).notNull().defaultNow(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('principals_department_idx').on(t.department)],
);
