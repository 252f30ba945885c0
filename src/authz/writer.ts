import { subject as asSubject } from '@casl/ability';
import { sql, type SQL } from 'drizzle-orm';
import { randomUUID } from 'node:crypto';
import { openDataKey, sealAddress, sealContact, type CryptoKeys } from '../crypto/customer-record.js';
import { lockDataKey } from '../crypto/shred.js';
import type { Db } from '../db/client.js';
import { queryRows } from '../db/execute.js';
import { customers, interactions } from '../db/schema/index.js';
import { ForbiddenError } from '../errors.js';
import { rowWhere } from './reader.js';
import { RequestAuthz } from './request-authz.js';

export interface WriteContext {
  db: Db;
  authz: RequestAuthz;
  keys: CryptoKeys;
}

/** Loads the attributes policies test for one customer the caller may read; null outside its rows. */
async function readableCustomer(ctx: WriteContext, id: string): Promise<Record<string, unknown> | null> {
  if (ctx.authz.grant('read', 'Customer').kind === 'never') return null;
  const rows = await queryRows(
    ctx.db,
    sql`SELECT ${customers.id} AS "id", ${customers.ownerId} AS "ownerId", ${customers.department} AS "department",
        ${customers.tier} AS "tier", ${customers.segment} AS "segment", ${customers.province} AS "province",
        ${customers.city} AS "city", ${customers.gender} AS "gender"
      FROM ${customers}
      WHERE ${customers.id} = ${id}::uuid AND (${rowWhere(ctx.authz, 'Customer')})`,
  );
  return rows[0] ?? null;
}

export type ContactUpdate = Partial<Record<'phone' | 'email' | 'address', string>>;

/**
 * Rectifies contact fields: every field is checked with `update` on the row
 * before anything is written; values are sealed (ciphertext, mask, blind index).
 * Returns false when the customer is not the caller's to see (same as missing).
 */
export async function updateCustomerContact(ctx: WriteContext, id: string, update: ContactUpdate): Promise<boolean> {
  // One transaction holding the data key (lockDataKey) until the UPDATE commits: a concurrent shred cannot interleave.
  return ctx.db.transaction((tx) => updateContactLocked({ ...ctx, db: tx }, id, update));
}

async function updateContactLocked(ctx: WriteContext, id: string, update: ContactUpdate): Promise<boolean> {
  const row = await readableCustomer(ctx, id);
  if (!row) return false;
  const target = asSubject('Customer', { ...row });
  const refused = Object.keys(update).filter((f) => !ctx.authz.ability().can('update', target, f));
  if (refused.length > 0) throw ForbiddenError.fields('Customer', refused, 'update');
  const stored = await lockDataKey(ctx.db, id);
  if (!stored) throw new ForbiddenError('this customer’s data key was destroyed; it cannot be updated');
  const dek = openDataKey(ctx.keys, id, stored);
  const sets: SQL[] = [sql`${sql.identifier('updated_at')} = now()`];
  for (const field of ['phone', 'email'] as const) {
    const value = update[field];
    if (value === undefined) continue;
    const sealed = sealContact(ctx.keys, dek, id, field, value);
    sets.push(
      sql`${sql.identifier(`${field}_enc`)} = ${sealed.enc}`,
      sql`${sql.identifier(`${field}_masked`)} = ${sealed.masked}`,
      sql`${sql.identifier(`${field}_bidx`)} = ${sealed.bidx}`,
    );
  }
  if (update.address !== undefined) {
    const sealed = sealAddress(dek, { id, address: update.address, province: String(row.province), city: String(row.city) });
    sets.push(sql`"address_enc" = ${sealed.addressEnc}`, sql`"address_masked" = ${sealed.addressMasked}`);
  }
  await ctx.db.execute(sql`UPDATE ${customers} SET ${sql.join(sets, sql`, `)} WHERE ${customers.id} = ${id}::uuid AND (${RequestAuthz.toSql(ctx.authz.grant('update', 'Customer'))})`);
  return true;
}

/** Records an interaction on a customer the caller may read, if the policy lets it create one. */
export async function addInteraction(
  ctx: WriteContext,
  input: { customerId: string; channel: string; summary: string },
): Promise<string | null> {
  const row = await readableCustomer(ctx, input.customerId);
  if (!row) return null;
  const target = asSubject('Interaction', {
    customerId: input.customerId,
    principalId: ctx.authz.principal.id,
    channel: input.channel,
    customer: row,
  });
  if (!ctx.authz.ability().can('create', target)) throw new ForbiddenError('not permitted to create Interaction for this customer');
  const id = randomUUID();
  await ctx.db.insert(interactions).values({
    id,
    customerId: input.customerId,
    principalId: ctx.authz.principal.id,
    channel: input.channel as 'call' | 'email' | 'wechat' | 'visit',
    summary: input.summary,
    occurredAt: new Date(),
  });
  return id;
}
