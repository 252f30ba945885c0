import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Db } from '../db/client.js';
import { Authenticator, type AuthConfig } from './authenticate.js';

const config: AuthConfig = { secret: 'a-test-secret-that-is-long-enough-0123456789', issuer: 'custos', audience: 'custos', principalCacheMs: 0 };
const row = { id: 'u-1', displayName: 'x', roles: ['sales_rep'], department: 'east', region: 'east-china', status: 'active' as const };
/** Just enough of drizzle's select chain for the prepared principal lookup, counting what it is asked. */
function principalsDb() {
  const seen = { prepared: 0, looked: [] as unknown[] };
  const prepare = () => {
    seen.prepared += 1;
    return { execute: (values: unknown) => (seen.looked.push(values), Promise.resolve([row])) };
  };
  const db = { select: () => ({ from: () => ({ where: () => ({ limit: () => ({ prepare }) }) }) }) } as unknown as Db;
  return { db, seen };
}
const { db } = principalsDb();

function token(opts: { secret?: string; expiresAt?: number; sub?: string } = {}) {
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256' })
    .setSubject(opts.sub ?? 'u-1')
    .setIssuer('custos')
    .setAudience('custos')
    .setExpirationTime(opts.expiresAt ?? Math.floor(Date.now() / 1000) + 3600)
    .sign(new TextEncoder().encode(opts.secret ?? config.secret));
}

describe('Authenticator', () => {
  it('prepares the principal lookup once and runs it for every cache miss', async () => {
    const { db: counting, seen } = principalsDb();
    const auth = new Authenticator(counting, config);
    const good = await token();
    await auth.authenticate(`Bearer ${good}`);
    await auth.authenticate(`Bearer ${good}`);
    expect(seen.prepared).toBe(1);
    // principalCacheMs 0: every request looks the principal up, with its id as the bound value.
    expect(seen.looked).toEqual([{ id: 'u-1' }, { id: 'u-1' }]);
  });

  it('accepts a verified token again from its cache, and refuses it once it has expired', async () => {
    const auth = new Authenticator(db, config);
    const soon = await token({ expiresAt: Math.floor(Date.now() / 1000) + 2 });
    await expect(auth.authenticate(`Bearer ${soon}`)).resolves.toMatchObject({ id: 'u-1' });
    await expect(auth.authenticate(`Bearer ${soon}`)).resolves.toMatchObject({ id: 'u-1' });
    // Past its expiry and the 5 s of clock skew verification tolerates.
    await new Promise((r) => setTimeout(r, 2_100 + 5_000));
    await expect(auth.authenticate(`Bearer ${soon}`)).rejects.toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
  }, 15_000);

  it('never lets a cached token vouch for another: a different signature is verified on its own', async () => {
    const auth = new Authenticator(db, config);
    const good = await token();
    await auth.authenticate(`Bearer ${good}`);
    const forged = await token({ secret: 'another-secret-that-is-also-long-enough-000' });
    await expect(auth.authenticate(`Bearer ${forged}`)).rejects.toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
    const [h, p] = good.split('.');
    await expect(auth.authenticate(`Bearer ${h}.${p}.${'A'.repeat(43)}`)).rejects.toMatchObject({ extensions: { code: 'UNAUTHENTICATED' } });
  });
});
