import { sql } from 'drizzle-orm';
import type { Db } from '../db/client.js';
import { queryRows, toBuffer } from '../db/execute.js';
import { customerKeys, customers } from '../db/schema/index.js';
import type { WrappedKey } from './envelope.js';

/**
 * Crypto-shredding: a customer's sensitive values exist only as ciphertexts
 * under the customer's data key, so destroying that key erases them
 * everywhere, backups included. What was derived from the values in the clear
 * (masked renditions, blind indexes) is cleared in the same transaction, so
 * no reveal, lookup or masked read yields anything of them afterwards.
 */

/** `shredded`: the key was destroyed now; `already`: the customer had no key left; `not_found`: no such customer. */
export type ShredOutcome = 'shredded' | 'already' | 'not_found';

/** Destroys the customer's data key and clears the masked renditions and blind indexes, in one transaction. */
export async function shredCustomer(db: Db, customerId: string): Promise<ShredOutcome> {
  return db.transaction(async (tx) => {
    // Key first, then the row: the same lock order as a write (lockDataKey, then UPDATE),
    // so a shred waits for a write under way and then clears what it wrote.
    const deleted = await queryRows(tx, sql`DELETE FROM ${customerKeys} WHERE ${customerKeys.customerId} = ${customerId}::uuid RETURNING 1 AS one`);
    const cleared = await queryRows(
      tx,
      sql`UPDATE ${customers} SET
            "phone_masked" = NULL, "phone_bidx" = NULL,
            "email_masked" = NULL, "email_bidx" = NULL,
            "address_masked" = NULL, "id_number_masked" = NULL, "birth_date_masked" = NULL,
            "updated_at" = now()
          WHERE ${customers.id} = ${customerId}::uuid RETURNING 1 AS one`,
    );
    if (cleared.length === 0) return 'not_found';
    return deleted.length > 0 ? 'shredded' : 'already';
  });
}

/**
 * Reads a customer's wrapped data key and holds it (FOR SHARE) until the
 * caller's transaction ends: a concurrent shred waits for the write, and a
 * write never re-creates masks or indexes for a customer shredded meanwhile.
 * Null once the key is destroyed.
 */
export async function lockDataKey(tx: Db, customerId: string): Promise<WrappedKey | null> {
  const [row] = await queryRows(
    tx,
    sql`SELECT ${customerKeys.kekId} AS kek_id, ${customerKeys.wrappedKey} AS wrapped FROM ${customerKeys}
        WHERE ${customerKeys.customerId} = ${customerId}::uuid FOR SHARE`,
  );
  const wrapped = toBuffer(row?.wrapped);
  return row && wrapped ? { kekId: String(row.kek_id), wrapped } : null;
}
