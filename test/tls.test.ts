import 'reflect-metadata';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { Agent, request as httpsRequest } from 'node:https';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { sql } from 'drizzle-orm';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/authenticate.js';
import { start, StartupError } from '../src/boot.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { startTestServer, type TestServer } from './helpers/server.js';

const FIXTURES = join(import.meta.dirname, 'fixtures', 'tls');
const CA_FILE = join(FIXTURES, 'test-only-ca.crt');
const OTHER_CA_FILE = join(FIXTURES, 'test-only-other-ca.crt');
const CERT_FILE = join(FIXTURES, 'test-only-server.crt');
const KEY_FILE = join(FIXTURES, 'test-only-server.key');
/** Same names, signed by nobody: what a client sees when the server's certificate changed to one its CA did not sign. */
const SELF_SIGNED = { cert: join(FIXTURES, 'test-only-selfsigned.crt'), key: join(FIXTURES, 'test-only-selfsigned.key') };

interface Answer {
  status: number;
  body: string;
}

/** One HTTPS request trusting only `ca`; rejects with Node's error when the server or its certificate is refused. */
function httpsCall(url: string, opts: { ca: Buffer; method?: string; headers?: Record<string, string>; body?: string; agent?: Agent }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: opts.method ?? 'GET', headers: opts.headers, ca: opts.ca, agent: opts.agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

describe('configuration of HTTPS', () => {
  it('needs both TLS_CERT_FILE and TLS_KEY_FILE, naming the one missing', () => {
    expect(() => loadConfig({ TLS_CERT_FILE: CERT_FILE })).toThrow(/TLS_KEY_FILE: required when TLS_CERT_FILE is set/);
    expect(() => loadConfig({ TLS_KEY_FILE: KEY_FILE })).toThrow(/TLS_CERT_FILE: required when TLS_KEY_FILE is set/);
    expect(loadConfig({ TLS_CERT_FILE: '', TLS_KEY_FILE: '' }).tls).toBeUndefined();
    expect(loadConfig({ TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: KEY_FILE }).tls).toBeDefined();
  });

  it('refuses unreadable, malformed and mismatched files naming the variable, never quoting the key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-tls-'));
    try {
      const otherKey = join(dir, 'other.key');
      await writeFile(otherKey, generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
      const key = await readFile(KEY_FILE, 'utf8');
      const secret = key.split('\n')[1]!;
      const cases: Array<[Record<string, string>, RegExp]> = [
        [{ TLS_CERT_FILE: join(dir, 'absent.crt'), TLS_KEY_FILE: KEY_FILE }, /TLS_CERT_FILE: cannot read .*absent\.crt \(ENOENT\)/],
        [{ TLS_CERT_FILE: KEY_FILE, TLS_KEY_FILE: KEY_FILE }, /TLS_CERT_FILE: not a PEM certificate/],
        [{ TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: CERT_FILE }, /TLS_KEY_FILE: not an unencrypted PEM private key/],
        [{ TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: otherKey }, /TLS_KEY_FILE: not the key of the certificate in TLS_CERT_FILE/],
      ];
      for (const [env, message] of cases) {
        let error: unknown;
        try {
          loadConfig(env);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(ConfigError);
        expect((error as Error).message).toMatch(message);
        expect((error as Error).message).not.toContain(secret);
        expect((error as Error).message).not.toContain('BEGIN');
      }
    } finally {
      await rm(dir, { recursive: true });
    }
  });

  it('stops the process at start with a message naming the variable and a non-zero exit', () => {
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: 'memory://', PORT: '0', TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: CA_FILE };
    delete env.DATABASE_URL;
    const run = spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, encoding: 'utf8', timeout: 60_000 });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/TLS_KEY_FILE/);
    expect(run.stderr).not.toMatch(/BEGIN|\n\s+at /);
  });
});

describe('configuration of database TLS', () => {
  const tlsOf = (url: string, env: Record<string, string> = {}) => {
    const db = loadConfig({ DATABASE_URL: url, ...env }).database;
    return db.kind === 'postgres' ? { mode: db.tls.mode, ca: Boolean(db.tls.ca), host: db.tls.host } : undefined;
  };
  /** The configuration error for these settings (the URL first, then the rest), or 'accepted'. */
  const refusal = (url: string | undefined, env: Record<string, string> = {}) => {
    try {
      loadConfig({ ...(url ? { DATABASE_URL: url } : {}), ...env });
    } catch (e) {
      return (e as Error).message;
    }
    return 'accepted';
  };

  it("reads sslmode as libpq does: plain without it, require upgraded to verify-ca by a CA, verify-full checking the URL's host", () => {
    expect(tlsOf('postgres://u@db.internal:5432/custos')).toEqual({ mode: 'disable', ca: false, host: undefined });
    expect(tlsOf('postgres://u@db.internal/custos?sslmode=require')).toEqual({ mode: 'require', ca: false, host: undefined });
    expect(tlsOf('postgres://u@db.internal/custos?sslmode=require', { DATABASE_CA_FILE: CA_FILE })).toEqual({ mode: 'verify-ca', ca: true, host: undefined });
    expect(tlsOf('postgres://u@10.0.0.5:5432/custos?sslmode=verify-full', { DATABASE_CA_FILE: CA_FILE })).toEqual({ mode: 'verify-full', ca: true, host: '10.0.0.5' });
    expect(tlsOf('postgres://u@[::1]:5432/custos?sslmode=verify-full')).toEqual({ mode: 'verify-full', ca: false, host: '::1' });
    expect(tlsOf('postgres://u@db.internal/custos?sslrootcert=system')).toEqual({ mode: 'verify-full', ca: false, host: 'db.internal' });
    expect(tlsOf('postgres://u@a.internal:5432,b.internal:5432/custos?sslmode=verify-full')).toEqual({ mode: 'verify-full', ca: false, host: undefined });
  });

  it('refuses settings it would not honour, naming the variable and never echoing the URL', () => {
    const url = 'postgres://custos:pa55word@db.internal:5432/custos';
    expect(refusal(`${url}?sslmode=verify_full`)).toMatch(/DATABASE_URL: sslmode must be one of/);
    expect(refusal(`${url}?sslmode=require&sslrootcert=/etc/ca.pem`)).toMatch(/DATABASE_URL: sslrootcert takes only "system"/);
    expect(refusal(`${url}?sslmode=verify-full&sslcert=/etc/client.pem`)).toMatch(/DATABASE_URL: sslcert is not supported/);
    expect(refusal(url, { DATABASE_CA_FILE: CA_FILE })).toMatch(/DATABASE_CA_FILE: needs sslmode=verify-full/);
    expect(refusal(`${url}?sslmode=verify-full`, { DATABASE_CA_FILE: KEY_FILE })).toMatch(/DATABASE_CA_FILE: not a PEM certificate bundle/);
    expect(refusal('postgres://u@10.0.0.5,10.0.0.6/custos?sslmode=verify-full')).toMatch(/DATABASE_URL: sslmode=verify-full with several hosts needs host names/);
    expect(refusal(undefined, { DATABASE_CA_FILE: CA_FILE })).toMatch(/DATABASE_CA_FILE: only used with DATABASE_URL/);
    for (const message of [refusal(`${url}?sslmode=verify_full`), refusal(`${url}?sslmode=require&sslrootcert=/etc/ca.pem`)]) expect(message).not.toContain('pa55word');
  });
});

describe('HTTPS listener (TLS_CERT_FILE, TLS_KEY_FILE)', () => {
  let server: TestServer;
  let base: string;
  const ca = () => readFile(CA_FILE);

  beforeAll(async () => {
    server = await startTestServer({ customers: 5, env: { TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: KEY_FILE, SHUTDOWN_DELAY_MS: '0' } });
    base = `https://localhost:${server.running.port}`;
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('serves /healthz, /readyz, /metrics and /graphql over HTTPS on PORT', async () => {
    const trusted = await ca();
    expect(server.running.app.scheme).toBe('https');
    expect((await httpsCall(`${base}/healthz`, { ca: trusted })).status).toBe(200);
    const ready = await httpsCall(`${base}/readyz`, { ca: trusted });
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body).status).toBe('ready');
    expect((await httpsCall(`${base}/metrics`, { ca: trusted })).body).toMatch(/custos_graphql_requests_total/);
    const token = await signToken(server.config.auth, 'u-mgr-1');
    const res = await httpsCall(`https://127.0.0.1:${server.running.port}/graphql`, {
      ca: trusted,
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: '{ customers(first: 2) { edges { node { id phone } } } }' }),
    });
    expect(res.status).toBe(200);
    const json = JSON.parse(res.body);
    expect(json.errors).toBeUndefined();
    expect(json.data.customers.edges).toHaveLength(2);
  });

  it('keeps the keep-alive and header timeouts of the plain listener', () => {
    expect(server.running.app.server.keepAliveTimeout).toBe(65_000);
    expect(server.running.app.server.headersTimeout).toBe(66_000);
  });

  it('is refused by a client that does not trust its CA', async () => {
    await expect(httpsCall(`${base}/healthz`, { ca: await readFile(OTHER_CA_FILE) })).rejects.toMatchObject({
      code: expect.stringMatching(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY/),
    });
  });

  it('does not answer plain HTTP on the same port', async () => {
    const plain = new Promise<number>((resolve, reject) => {
      const req = httpRequest(`http://127.0.0.1:${server.running.port}/healthz`, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      req.end();
    });
    // Node's TLS server closes a connection that does not start with a handshake.
    await expect(plain).rejects.toBeInstanceOf(Error);
  });

  it('drains on stop although a client keeps an idle keep-alive connection open', async () => {
    const other = await startTestServer({ customers: 0, env: { TLS_CERT_FILE: CERT_FILE, TLS_KEY_FILE: KEY_FILE, SHUTDOWN_DELAY_MS: '0' } });
    const agent = new Agent({ keepAlive: true });
    try {
      const url = `https://localhost:${other.running.port}/healthz`;
      expect((await httpsCall(url, { ca: await ca(), agent })).status).toBe(200);
      const started = Date.now();
      await other.stop();
      // Far below the 65 s keep-alive timeout: the idle connection was closed, not waited for.
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      agent.destroy();
    }
  });
});

/**
 * A TLS-terminating stand-in for a PostgreSQL server with ssl=on: it answers
 * the client's SSLRequest with 'S', completes the handshake with the test-only
 * server certificate, then pipes the decrypted stream to the real (plain)
 * server. The real server's configuration is left alone.
 */
class TlsTerminatingProxy {
  /** Connections whose TLS handshake completed. */
  handshakes = 0;
  port = 0;
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  private identity = { cert: CERT_FILE, key: KEY_FILE };

  constructor(private readonly target: { host: string; port: number }) {}

  /** Presents another certificate from the next connection on. */
  present(identity: { cert: string; key: string }): void {
    this.identity = identity;
  }

  /** Drops every open connection (the client's pool has to reconnect). */
  cutConnections(): void {
    for (const s of this.sockets) s.destroy();
  }

  async open(host = '127.0.0.1'): Promise<void> {
    this.server = createServer((client) => {
      const key = readFileSync(this.identity.key);
      const cert = readFileSync(this.identity.cert);
      this.track(client);
      client.once('data', (first: Buffer) => {
        // SSLRequest: length 8, then the code 80877103.
        if (first.length !== 8 || first.readUInt32BE(4) !== 80877103) return void client.destroy();
        client.write('S');
        const secure = new TLSSocket(client, { isServer: true, key, cert });
        const upstream = connect(this.target.port, this.target.host);
        this.track(secure);
        this.track(upstream);
        secure.on('secure', () => (this.handshakes += 1));
        secure.pipe(upstream).pipe(secure);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, host, resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async close(): Promise<void> {
    this.cutConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  }
}

// The local PostgreSQL runs without TLS (and stays so); the proxy above supplies the TLS side.
describe.skipIf(!process.env.DATABASE_URL)('PostgreSQL over TLS (DATABASE_URL sslmode, DATABASE_CA_FILE)', () => {
  const base = new URL(process.env.DATABASE_URL ?? 'postgres://unset');
  const name = `custos_t_tls_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const proxies: TlsTerminatingProxy[] = [];
  let proxy: TlsTerminatingProxy;

  const admin = () => postgres(base.toString(), { max: 1, onnotice: () => undefined });
  /** The test database, reached through `host:port` with these query parameters. */
  const urlVia = (host: string, port: number, query: string) => {
    const url = new URL(base.toString());
    url.host = `${host}:${port}`;
    url.pathname = `/${name}`;
    url.search = query;
    return url.toString();
  };
  const configFor = (env: Record<string, string>) =>
    loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'silent', SEED_DEMO: 'auto', SHUTDOWN_DELAY_MS: '0', ...env });
  const openProxy = async (host?: string) => {
    const p = new TlsTerminatingProxy({ host: base.hostname, port: Number(base.port || 5432) });
    proxies.push(p);
    await p.open(host);
    return p;
  };

  beforeAll(async () => {
    const adminSql = admin();
    await adminSql.unsafe(`CREATE DATABASE ${name}`);
    await adminSql.end();
    proxy = await openProxy();
  });
  afterAll(async () => {
    for (const p of proxies) await p.close();
    const adminSql = admin();
    await adminSql.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    await adminSql.end();
  });

  it('connects with sslmode=verify-full and the CA from DATABASE_CA_FILE, and serves GraphQL through it', async () => {
    const config = configFor({ DATABASE_URL: urlVia('127.0.0.1', proxy.port, '?sslmode=verify-full'), DATABASE_CA_FILE: CA_FILE });
    const running = await start(config, { demoCustomers: 5 });
    try {
      expect(proxy.handshakes).toBeGreaterThan(0);
      const token = await signToken(config.auth, 'u-mgr-1');
      const res = await fetch(`http://127.0.0.1:${running.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ customers(first: 2) { totalCount edges { node { id } } } }' }),
      });
      const json: any = await res.json();
      expect(json.errors).toBeUndefined();
      expect(json.data.customers.edges).toHaveLength(2);
      expect((await fetch(`http://127.0.0.1:${running.port}/readyz`)).status).toBe(200);
    } finally {
      await running.stop();
    }
  });

  it('refuses to start, quickly and naming the settings, when the server certificate is not signed by DATABASE_CA_FILE', async () => {
    const config = configFor({ DATABASE_URL: urlVia('127.0.0.1', proxy.port, '?sslmode=verify-full'), DATABASE_CA_FILE: OTHER_CA_FILE });
    const started = Date.now();
    const failure = start(config, { demoCustomers: 5 });
    await expect(failure).rejects.toBeInstanceOf(StartupError);
    await expect(failure).rejects.toThrow(/TLS to the database failed \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN)\).*DATABASE_CA_FILE/);
    // connect_timeout is 5 s: a refusal must not wait for it, let alone hang.
    expect(Date.now() - started).toBeLessThan(20_000);
  });

  it('answers SERVICE_UNAVAILABLE, and readiness falls, when the server later presents a certificate the CA did not sign', async () => {
    const own = await openProxy();
    const config = configFor({ DATABASE_URL: urlVia('127.0.0.1', own.port, '?sslmode=verify-full'), DATABASE_CA_FILE: CA_FILE, SEED_DEMO: 'never' });
    const running = await start(config);
    try {
      own.present(SELF_SIGNED);
      own.cutConnections();
      // The first attempts may still meet a connection being torn down; the reconnection is what is refused.
      const tlsFailure = async () => {
        for (let i = 0; i < 40; i++) {
          const error = await running.db.db.execute(sql`select 1`).then(
            () => undefined,
            (e: unknown) => e,
          );
          if ((error as { cause?: { name?: string } } | undefined)?.cause?.name === 'DatabaseTlsError') return error;
          await new Promise((r) => setTimeout(r, 50));
        }
        return undefined;
      };
      const failure = await tlsFailure();
      expect(failure).toMatchObject({ cause: { name: 'DatabaseTlsError', code: '08006', tlsCode: 'DEPTH_ZERO_SELF_SIGNED_CERT' } });
      const token = await signToken(config.auth, 'u-mgr-1');
      const res = await fetch(`http://127.0.0.1:${running.port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: '{ customers(first: 1) { edges { node { id } } } }' }),
      });
      const json: any = await res.json();
      expect(json.errors[0].extensions.code).toBe('SERVICE_UNAVAILABLE');
      expect((await fetch(`http://127.0.0.1:${running.port}/readyz`)).status).toBe(503);
    } finally {
      await running.stop();
    }
  });

  it('checks the host name with verify-full, and only the chain with verify-ca', async () => {
    // Same certificate, reached by an address that is not among its names (127.0.0.2 is loopback too).
    const elsewhere = await openProxy('127.0.0.2');
    const url = (mode: string) => urlVia('127.0.0.2', elsewhere.port, `?sslmode=${mode}`);
    await expect(start(configFor({ DATABASE_URL: url('verify-full'), DATABASE_CA_FILE: CA_FILE }))).rejects.toThrow(/ERR_TLS_CERT_ALTNAME_INVALID/);
    const running = await start(configFor({ DATABASE_URL: url('verify-ca'), DATABASE_CA_FILE: CA_FILE }));
    try {
      expect((await fetch(`http://127.0.0.1:${running.port}/readyz`)).status).toBe(200);
    } finally {
      await running.stop();
    }
  });

  it('says the server may not accept TLS when sslmode asks for it and the server has none', async () => {
    const direct = configFor({ DATABASE_URL: urlVia(base.hostname, Number(base.port || 5432), '?sslmode=require') });
    await expect(start(direct)).rejects.toThrow(/cannot connect to the database \(\w+\) \(sslmode=require: does the server accept TLS\?\)/);
  });

  it('stays plain with sslmode=disable', async () => {
    const before = proxy.handshakes;
    const running = await start(configFor({ DATABASE_URL: urlVia(base.hostname, Number(base.port || 5432), '?sslmode=disable') }));
    try {
      expect((await fetch(`http://127.0.0.1:${running.port}/readyz`)).status).toBe(200);
      expect(proxy.handshakes).toBe(before);
    } finally {
      await running.stop();
    }
  });
});
