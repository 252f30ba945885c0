import { eq } from 'drizzle-orm';
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

type Verifier = (token: string) => Promise<string>;

export type Traced = <T>(run: () => Promise<T>) => Promise<T>;

function verifier(config: AuthConfig): Verifier {
  const options = { issuer: config.issuer, audience: config.audience, clockTolerance: 5 };
  if (config.jwksUrl) {
    const jwks: JWTVerifyGetKey = createRemoteJWKSet(new URL(config.jwksUrl));
    return async (token) => subjectOf((await jwtVerify(token, jwks, { ...options, algorithms: ['RS256', 'ES256', 'EdDSA'] })).payload.sub);
  }
  const key = new TextEncoder().encode(config.secret);
  return async (token) => subjectOf((await jwtVerify(token, key, { ...options, algorithms: ['HS256'] })).payload.sub);
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

  constructor(
    private readonly db: Db,
    private readonly config: AuthConfig,
  ) {
    this.verify = verifier(config);
  }

  /** `traced` wraps the principal lookup (a cache miss) so it gets its own SQL span. */
  async authenticate(header: string | undefined, traced: Traced = (run) => run()): Promise<Principal> {
    const match = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(header ?? '');
    if (!match) throw new UnauthenticatedError('missing or malformed Authorization: Bearer token');
    let id: string;
    try {
      id = await this.verify(match[1]!);
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

  private async load(id: string, traced: Traced): Promise<Principal | null> {
    const now = Date.now();
    const hit = this.cache.get(id);
    if (hit && hit.until > now) return hit.principal;
    const [row] = await traced(() => this.db.select().from(principals).where(eq(principals.id, id)).limit(1));
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
