import { X509Certificate, createPrivateKey } from 'node:crypto';
import { isIP } from 'node:net';
import { createSecureContext } from 'node:tls';
import type { DbTls, SslMode } from './db/client.js';

/** One bad setting: the variable to name and why, never its value. */
export interface Issue {
  key: string;
  message: string;
}

/** Node's error code (ENOENT, ERR_OSSL_…), which names the failure without quoting any content. */
export function errorCode(e: unknown): string {
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : 'invalid';
}

/** Both files or neither; a certificate, an unencrypted private key, and the key of that certificate. */
export function serverTlsIssues({ TLS_CERT_FILE: cert, TLS_KEY_FILE: key }: { TLS_CERT_FILE?: Buffer; TLS_KEY_FILE?: Buffer }): Issue[] {
  if (!cert && !key) return [];
  if (!cert) return [{ key: 'TLS_CERT_FILE', message: 'required when TLS_KEY_FILE is set' }];
  if (!key) return [{ key: 'TLS_KEY_FILE', message: 'required when TLS_CERT_FILE is set' }];
  const checks: Array<[Issue, () => unknown]> = [
    [{ key: 'TLS_CERT_FILE', message: 'not a PEM certificate' }, () => new X509Certificate(cert)],
    [{ key: 'TLS_KEY_FILE', message: 'not an unencrypted PEM private key' }, () => createPrivateKey(key)],
    [{ key: 'TLS_KEY_FILE', message: 'not the key of the certificate in TLS_CERT_FILE' }, () => createSecureContext({ cert, key })],
  ];
  for (const [issue, check] of checks) {
    try {
      check();
    } catch (e) {
      return [{ key: issue.key, message: `${issue.message} (${errorCode(e)})` }];
    }
  }
  return [];
}

/** At least one PEM certificate, and every block in the file parses as one. */
export function certificateBundle(pem: Buffer): boolean {
  const blocks = pem.toString('latin1').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  try {
    for (const block of blocks) new X509Certificate(block);
    return blocks.length > 0;
  } catch {
    return false;
  }
}

const SSL_MODES: readonly SslMode[] = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full'];

/**
 * TLS to PostgreSQL from DATABASE_URL's libpq parameters and DATABASE_CA_FILE,
 * read the way libpq reads them: no sslmode means plain (postgres.js's
 * default, unchanged), `require` with a CA verifies the chain (verify-ca),
 * `sslrootcert=system` means verify-full against the system store.
 * Messages never quote the URL (it may hold a password).
 */
export function databaseTls(url: string, ca: Buffer | undefined): { tls: DbTls } | { issue: Issue } {
  const resolved = tlsMode(url, ca);
  if ('issue' in resolved || resolved.tls.mode !== 'verify-full') return resolved;
  // postgres.js checks a certificate reached by IP address against "localhost": name the host to check ourselves.
  const hosts = urlHosts(url);
  if (hosts.length === 1) return { tls: { ...resolved.tls, host: hosts[0]! } };
  if (hosts.some((h) => isIP(h))) return { issue: { key: 'DATABASE_URL', message: 'sslmode=verify-full with several hosts needs host names, not IP addresses' } };
  return resolved;
}

/** The hosts of a postgres:// URL (several for a multi-host URL), without user info, ports or IPv6 brackets. */
function urlHosts(url: string): string[] {
  const authority = url.slice(url.indexOf('://') + 3).split(/[/?#]/)[0] ?? '';
  return authority
    .slice(authority.lastIndexOf('@') + 1)
    .split(',')
    .map((h) => (h.startsWith('[') ? h.slice(1, h.indexOf(']')) : (h.split(':')[0] ?? '')))
    .filter(Boolean);
}

function tlsMode(url: string, ca: Buffer | undefined): { tls: DbTls } | { issue: Issue } {
  const issue = (key: string, message: string) => ({ issue: { key, message } });
  // Not `new URL`: a multi-host URL (postgres://a:5432,b:5432/db), which postgres.js accepts, is not a WHATWG URL.
  const query = url.includes('?') ? (url.slice(url.indexOf('?') + 1).split('#')[0] ?? '') : '';
  const params = new URLSearchParams(query);
  const unsupported = ['sslcert', 'sslkey', 'sslpassword', 'sslcrl', 'sslcrldir'].find((p) => params.has(p));
  if (unsupported) return issue('DATABASE_URL', `${unsupported} is not supported (no client certificates or CRLs)`);
  const given = params.get('sslmode');
  const mode = SSL_MODES.find((m) => m === (given ?? 'disable'));
  if (!mode) return issue('DATABASE_URL', `sslmode must be one of ${SSL_MODES.join(', ')}`);
  const rootcert = params.get('sslrootcert');
  if (rootcert !== null) {
    if (rootcert !== 'system') return issue('DATABASE_URL', 'sslrootcert takes only "system" here: give a CA file as DATABASE_CA_FILE');
    if (ca) return issue('DATABASE_CA_FILE', 'conflicts with sslrootcert=system in DATABASE_URL');
    if (given !== null && mode !== 'verify-full') return issue('DATABASE_URL', 'sslrootcert=system needs sslmode=verify-full');
    return { tls: { mode: 'verify-full' } };
  }
  if (!ca) return { tls: { mode } };
  if (mode === 'require') return { tls: { mode: 'verify-ca', ca } };
  if (mode === 'verify-ca' || mode === 'verify-full') return { tls: { mode, ca } };
  return issue('DATABASE_CA_FILE', 'needs sslmode=verify-full, verify-ca or require in DATABASE_URL');
}
