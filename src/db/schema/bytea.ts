import { customType } from 'drizzle-orm/pg-core';

/** PostgreSQL bytea as a Node Buffer (both postgres.js and PGlite return Uint8Array-compatible values). */
export const bytea = customType<{ data: Buffer; driverData: Buffer | Uint8Array }>({
  dataType() {
    return 'bytea';
  },
  fromDriver(value) {
    return Buffer.isBuffer(value) ? value : Buffer.from(value);
  },
});
