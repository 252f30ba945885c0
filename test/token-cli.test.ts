import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { decodeProtectedHeader, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

const SECRET = 'a-token-cli-test-secret-of-enough-length-0123';

/** `npm run -s token -- …` as npm runs it, with only the given settings (no JWT_SECRET leaks in from the test's environment). */
function token(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'src/cli/token.ts', ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'development', LOG_LEVEL: 'silent', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('npm run -s token', () => {
  it('prints one HS256 token for the principal, signed with JWT_SECRET, for custos as issuer and audience, valid 12 hours', async () => {
    const run = await token(['u-mgr-1'], { JWT_SECRET: SECRET });
    expect(run.code, run.stderr).toBe(0);
    const lines = run.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const jwt = lines[0]!;
    expect(decodeProtectedHeader(jwt).alg).toBe('HS256');
    const { payload } = await jwtVerify(jwt, new TextEncoder().encode(SECRET), { issuer: 'custos', audience: 'custos', algorithms: ['HS256'] });
    expect(payload.sub).toBe('u-mgr-1');
    expect(payload.exp! - payload.iat!).toBe(12 * 3600);
    // Signed with that secret and no other.
    await expect(jwtVerify(jwt, new TextEncoder().encode(`${SECRET}x`))).rejects.toThrow();
  }, 60_000);

  it('follows JWT_ISSUER and JWT_AUDIENCE as the server does', async () => {
    const run = await token(['u-rep-1'], { JWT_SECRET: SECRET, JWT_ISSUER: 'idp.example', JWT_AUDIENCE: 'crm' });
    expect(run.code, run.stderr).toBe(0);
    const { payload } = await jwtVerify(run.stdout.trim(), new TextEncoder().encode(SECRET), { issuer: 'idp.example', audience: 'crm' });
    expect(payload.sub).toBe('u-rep-1');
  }, 60_000);

  it('refuses a missing, extra or malformed principal id with its usage and exit code 2, printing no token', async () => {
    for (const args of [[], ['u-mgr-1', 'u-rep-1'], ['u mgr 1'], ['x'.repeat(129)], ['u-mgr-1;rm']]) {
      const run = await token(args, { JWT_SECRET: SECRET });
      expect(run.code, JSON.stringify(args)).toBe(2);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain('usage: npm run -s token -- <principal-id>');
    }
  }, 60_000);

  it('refuses to mint in production, with a message and exit code 2, whatever the configuration', async () => {
    const key = () => randomBytes(32).toString('base64');
    const production = {
      NODE_ENV: 'production', JWT_SECRET: SECRET, KEYRING: `k1:${key()}`, KEK_ACTIVE_ID: 'k1', BLIND_INDEX_KEY: key(), PSEUDONYM_KEY: key(), CURSOR_SECRET: key(),
    };
    const refused = await token(['u-admin-1'], production);
    expect(refused.code, refused.stderr).toBe(2);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toContain('refusing to mint tokens in production');
    // A production configuration short of its keys fails on that first (exit 1), naming the settings and no value.
    const incomplete = await token(['u-admin-1'], { NODE_ENV: 'production', JWT_SECRET: SECRET });
    expect(incomplete.code).toBe(1);
    expect(incomplete.stdout).toBe('');
    expect(incomplete.stderr).toContain('KEYRING: required in production');
    for (const run of [refused, incomplete]) {
      expect(run.stderr).not.toContain(SECRET);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    }
  }, 60_000);
});
