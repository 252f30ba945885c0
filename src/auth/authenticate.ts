import { eq, sql } from 'drizzle-orm';
import { createRemoteJWKSet, errors as joseErrors, jwtVerify, SignJWT, type JWTVerifyGetKey } from 'jose';
import type { Principal } from '../authz/principal.js';
import type { Db } from '../db/client.js';
import { principals } from '../db/schema/index.js';
import { ForbiddenError, UnauthenticatedError } from '../errors.js';

export interface AuthConfig {
  secret?: string | undefined;
  jwksUrl?: string | undefined;
  issuer: string;
  audience: string;
  principalCacheMs: number;
}

/** The verified subject and when the token stops being valid (ms since epoch). */
type Verifier = (token: string) => Promise<{ sub: string; until: number }>;

const TOKEN_CACHE_MS = 60_000;
const TOKEN_CACHE_SIZE = 10_000;

export type Traced = <T>(run: () => Promise<T>) => Promise<T>;

function verifier(config: AuthConfig): Verifier {
  const options = { issuer: config.issuer, audience: config.audience, clockTolerance: 5 };
  const verified = (payload: { sub?: string | undefined; exp?: number | undefined }) => ({
    sub: subjectOf(payload.sub),
    until: typeof payload.exp === 'number' ? payload.exp * 1000 : Number.POSITIVE_INFINITY,
  });
  if (config.jwksUrl) {
    const jwks: JWTVerifyGetKey = createRemoteJWKSet(new URL(config.jwksUrl));
    return async (token) => verified((await jwtVerify(token, jwks, { ...options, algorithms: ['RS256', 'ES256', 'EdDSA'] })).payload);
  }
  // Imported once: given raw bytes, jose imports a WebCrypto key on every verification.
  const key = crypto.subtle.importKey('raw', new TextEncoder().encode(config.secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
  return async (token) => verified((await jwtVerify(token, await key, { ...options, algorithms: ['HS256'] })).payload);
}

function subjectOf(sub: string | undefined): string {
  if (!sub || sub.length > 128) throw new UnauthenticatedError('token has no subject');
  return sub;
}

/**
 * Bearer JWT → Principal. The token only names the caller; roles, department
 * and status come from the principals table (cached a few seconds), so a
 * departed or frozen principal is refused even with a valid token.
 */
export class Authenticator {
  private readonly verify: Verifier;
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();
  /**
   * Tokens already verified, by their exact text: the same bytes verify the
   * same way, so a repeat costs a lookup instead of a signature check. An
   * entry lives until the token expires, and at most TOKEN_CACHE_MS.
   */
  private readonly tokens = new Map<string, { sub: string; until: number }>();

  /**
   * The lookup of a cache miss, prepared once: unprepared, postgres.js sends a
   * statement with parameters twice (describe, then run) and PostgreSQL plans
   * it every time.
   */
  private readonly byId;

  constructor(
    db: Db,
    private readonly config: AuthConfig,
  ) {
    this.verify = verifier(config);
    this.byId = db.select().from(principals).where(eq(principals.id, sql.placeholder('id'))).limit(1).prepare('custos_principal_by_id');
  }

  /** `traced` wraps the principal lookup of a cache miss (the GraphQL handler notes its duration on the operation span). */
  async authenticate(header: string | undefined, traced: Traced = (run) => run()): Promise<Principal> {
    const match = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(header ?? '');
    if (!match) throw new UnauthenticatedError('missing or malformed Authorization: Bearer token');
    let id: string;
    try {
      id = await this.verifyCached(match[1]!);
    } catch (e) {
      if (e instanceof UnauthenticatedError) throw e;
      if (e instanceof joseErrors.JWTExpired) throw new UnauthenticatedError('token expired');
      throw new UnauthenticatedError('invalid token');
    }
    const principal = await this.load(id, traced);
    if (!principal) throw new UnauthenticatedError('unknown principal');
    if (principal.status !== 'active') {
      throw new ForbiddenError(`principal is ${principal.status}; access refused`, { http: { status: 403 } });
    }
    return principal;
  }

  private async verifyCached(token: string): Promise<string> {
    const now = Date.now();
    const hit = this.tokens.get(token);
    if (hit && hit.until > now) return hit.sub;
    const { sub, until } = await this.verify(token);
    if (this.tokens.size >= TOKEN_CACHE_SIZE) this.tokens.delete(this.tokens.keys().next().value as string);
    this.tokens.set(token, { sub, until: Math.min(until, now + TOKEN_CACHE_MS) });
    return sub;
  }

  private async load(id: string, traced: Traced): Promise<Principal | null> {
    const now = Date.now();
    const hit = this.cache.get(id);
    if (hit && hit.until > now) return hit.principal;
    const [row] = await traced(() => this.byId.execute({ id }));
    const principal: Principal | null = row
      ? { id: row.id, displayName: row.displayName, roles: row.roles, department: row.department, region: row.region, status: row.status }
      : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(id, { principal, until: now + this.config.principalCacheMs });
    return principal;
  }
}

/** Signs a development token (HS256) for a principal id. */
export async function signToken(config: AuthConfig, principalId: string, ttl = '12h'): Promise<string> {
  if (!config.secret) throw new Error('signing tokens needs JWT_SECRET (this deployment verifies against JWKS_URL)');
  return new SignJWT({})
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(principalId)
    .setIssuer(config.issuer)
    .setAudience(config.audience)
    .setIssuedAt()
    .setExpirationTime(ttl)
    .sign(new TextEncoder().encode(config.secret));
}
