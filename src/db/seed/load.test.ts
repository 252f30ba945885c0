import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoPrincipals } from '../../authz/policy/demo-principals.js';
import { loadConfig } from '../../config.js';
import { openDataKey, type CryptoKeys } from '../../crypto/customer-record.js';
import { decryptField } from '../../crypto/envelope.js';
import { createDb, type DbHandle } from '../client.js';
import { queryRows } from '../execute.js';
import { customerAt, generateSeed } from './generate.js';
import { SeedError, seedDatabase, type SeedSummary } from './load.js';

const config = loadConfig({});
const keys: CryptoKeys = config.keys;
const asOf = new Date('2026-03-01T00:00:00Z');
const tables = ['principals', 'customers', 'customer_keys', 'orders', 'interactions', 'consents'] as const;

let handle: DbHandle;
let first: SeedSummary;

async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of tables) {
    const [row] = await queryRows(handle.db, sql`select count(*)::int as n from ${sql.identifier(table)}`);
    out[table] = row!.n as number;
  }
  return out;
}

beforeAll(async () => {
  handle = await createDb({ kind: 'pglite', dataDir: 'memory://' });
  await handle.migrate();
  first = await seedDatabase(handle, keys, { customers: 200, asOf });
});

afterAll(async () => {
  await handle?.close();
});

describe(seedDatabase.name, () => {
  it('writes the demo principals, the customers with their keys, and exactly the generated history', async () => {
    const expected = { orders: 0, interactions: 0, consents: 0 };
    for (const b of generateSeed({ ...first.plan, count: 200 })) {
      expected.orders += b.orders.length;
      expected.interactions += b.interactions.length;
      expected.consents += b.consents.length;
    }
    expect(first).toMatchObject({ skipped: false, customers: 200, ...expected });
    expect(await counts()).toEqual({
      principals: demoPrincipals.length,
      customers: 200,
      customer_keys: 200,
      ...expected,
    });
  });

  it('stores no plaintext phone, email, id number, address or birth date in any table', async () => {
    const dump: string[] = [];
    for (const table of tables) {
      const rows = await queryRows(handle.db, sql`select t::text as row from ${sql.identifier(table)} t`);
      dump.push(...rows.map((r) => r.row as string));
    }
    const text = dump.join('\n');
    for (let i = 0; i < 200; i++) {
      const c = customerAt(first.plan, i);
      for (const value of [c.phone, c.email, c.idNumber, c.address, c.birthDate]) {
        if (value !== null) expect(text.includes(value), `customer ${i} leaks a sensitive value`).toBe(false);
      }
    }
  });

  it('stores masks beside ciphertexts that decrypt to the generated values', async () => {
    const c = customerAt(first.plan, 3);
    const [row] = await queryRows(
      handle.db,
      sql`select c.phone_enc, c.phone_masked, k.kek_id, k.wrapped_key
          from customers c join customer_keys k on k.customer_id = c.id where c.id = ${c.id}`,
    );
    expect(row!.phone_masked).toBe(`*******${c.phone!.slice(-4)}`);
    const dek = openDataKey(keys, c.id, { kekId: row!.kek_id as string, wrapped: Buffer.from(row!.wrapped_key as Uint8Array) });
    expect(decryptField(dek, c.id, 'phone', Buffer.from(row!.phone_enc as Uint8Array))).toBe(c.phone);
  });

  it('leaves an already seeded database alone', async () => {
    const before = await counts();
    const again = await seedDatabase(handle, keys, { customers: 200, asOf });
    expect(again.skipped).toBe(true);
    expect(await counts()).toEqual(before);
  });

  it('refuses a customer count it cannot generate, before writing anything', async () => {
    await expect(seedDatabase(handle, keys, { customers: 2.5, reset: true })).rejects.toThrow(RangeError);
    expect((await counts()).customers).toBe(200);
  });

  it('replaces the customer data on reset, keeping the principals', async () => {
    const progress: number[] = [];
    const reset = await seedDatabase(handle, keys, { customers: 40, asOf, reset: true, onProgress: (done) => progress.push(done) });
    expect(reset.customers).toBe(40);
    expect(progress.at(-1)).toBe(40);
    const after = await counts();
    expect(after).toMatchObject({ principals: demoPrincipals.length, customers: 40, customer_keys: 40, orders: reset.orders });
    const ids = await queryRows(handle.db, sql`select id from customers where id = ${customerAt(reset.plan, 39).id}`);
    expect(ids).toHaveLength(1);
  });

  it('rolls a failed batch back whole and reports it without any customer value', async () => {
    await handle.db.execute(sql`alter table orders add constraint seed_test_no_orders check (amount < 0) not valid`);
    try {
      const failing = seedDatabase(handle, keys, { customers: 30, asOf, reset: true });
      await expect(failing).rejects.toThrow(SeedError);
      const message = await failing.catch((e: Error) => e.message);
      expect(message).toMatch(/^writing customers 0\.\.29 failed: .*seed_test_no_orders/);
      expect(message).not.toContain(customerAt(first.plan, 0).name);
      expect(await counts()).toMatchObject({ customers: 0, customer_keys: 0, orders: 0 });
    } finally {
      await handle.db.execute(sql`alter table orders drop constraint seed_test_no_orders`);
    }
  });
});
