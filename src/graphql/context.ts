import type DataLoader from 'dataloader';
import type { EnforcementFault, ReadContext } from '../authz/reader.js';
import type { RequestAuthz } from '../authz/request-authz.js';
import type { Principal } from '../authz/principal.js';
import type { CryptoKeys } from '../crypto/customer-record.js';
import type { Db } from '../db/client.js';

/** Everything a resolver may use: the caller's policy view, the database behind it, and per-request loaders. */
export interface Context {
  principal: Principal;
  authz: RequestAuthz;
  db: Db;
  keys: CryptoKeys;
  cursorSecret: string;
  maxPageSize: number;
  faults: EnforcementFault[];
  loaders: Map<string, DataLoader<string, unknown>>;
}

export function readContext(ctx: Context): ReadContext {
  return {
    db: ctx.db,
    authz: ctx.authz,
    keyring: ctx.keys.keyring,
    onFault: (fault) => ctx.faults.push(fault),
  };
}
