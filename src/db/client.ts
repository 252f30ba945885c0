import { PGlite } from '@electric-sql/pglite';
import { drizzle as drizzlePglite } from 'drizzle-orm/pglite';
import { drizzle as drizzlePostgres } from 'drizzle-orm/postgres-js';
import { migrate as migratePglite } from 'drizzle-orm/pglite/migrator';
import { migrate as migratePostgres } from 'drizzle-orm/postgres-js/migrator';
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { AcquireGate, type AcquireGateStats } from './acquire-gate.js';
import { readsPool } from './pool-split.js';
import * as schema from './schema/index.js';

export type Schema = typeof schema;
/** One drizzle type over every driver: the rest of the code never knows which database it talks to. */
export type Db = PgDatabase<PgQueryResultHKT, Schema>;

/** libpq's sslmode values, as DATABASE_URL spells them. */
export type SslMode = 'disable' | 'allow' | 'prefer' | 'require' | 'verify-ca' | 'verify-full';

/** How to talk TLS to PostgreSQL: validated and resolved by the config (`require` with a CA is already `verify-ca`). */
export interface DbTls {
  mode: SslMode;
  /** PEM bundle of the CA(s) to trust instead of the system store (DATABASE_CA_FILE). */
  ca?: Buffer;
  /** verify-full: the name or address the server's certificate must carry (the URL's host). */
  host?: string;
}

export type DbConfig =
  | { kind: 'pglite'; dataDir: string }
  | {
      kind: 'postgres';
      url: string;
      poolMax: number;
      statementTimeoutMs?: number;
      /** Longest wait for a free pooled connection; unset: no deadline (tools and tests that open their own handle). */
      acquireTimeoutMs?: number;
      tls?: DbTls;
    };

export interface DbHandle {
  db: Db;
  /**
   * Where policed reads run (src/authz/reader.ts). On PostgreSQL, connections
   * of their own that plan each prepared statement once (see `readsPool`);
   * elsewhere the same handle as `db`.
   */
  reads: Db;
  kind: DbConfig['kind'];
  /** SQL statements custos sent since start (for metrics and the benchmark's statements-per-request; see `instrumented`). */
  stats: { statements: number };
  /** Pool slots in use, callers waiting, acquire timeouts (all zero on PGlite, which has one connection and no gate). */
  poolStats(): AcquireGateStats;
  migrate(): Promise<void>;
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Arbitrary fixed key of the advisory lock held while migrating. */
const MIGRATION_LOCK = 0x637573746f73; // "custos"

/**
 * What PostgreSQL shows as each connection's application (pg_stat_activity,
 * log_line_prefix %a): the policed reads' pool apart from the rest (audit
 * appends, principal lookups, writes, the auditor's queries), so that an
 * operator, and the benchmark, can tell which pool a backend's work is for.
 */
export const APPLICATION_NAME = 'custos';
export const READS_APPLICATION_NAME = 'custos-reads';

const migrationsFolder = fileURLToPath(new URL('../../drizzle', import.meta.url));

/** Opens PGlite (DATA_DIR, or `memory://`) or a postgres.js pool behind the same drizzle type. */
export async function createDb(config: DbConfig): Promise<DbHandle> {
  switch (config.kind) {
    case 'pglite': {
      const client = await PGlite.create(config.dataDir);
      const stats = { statements: 0 };
      countStatements(client, stats);
      const db = drizzlePglite(client, { schema });
      return {
        db: db as unknown as Db,
        reads: db as unknown as Db,
        kind: 'pglite',
        stats,
        poolStats: () => ({ inUse: 0, waiting: 0, timeouts: 0 }),
        migrate: () => migratePglite(db, { migrationsFolder }),
        ping: async () => {
          await client.query('select 1');
        },
        close: () => client.close(),
      };
    }
    case 'postgres': {
      const stats = { statements: 0 };
      const url = withoutTlsParams(config.url);
      const connect = {
        ssl: sslOption(config.tls ?? { mode: 'disable' }),
        onnotice: () => undefined,
        // Fail fast when the database is down instead of hanging until the HTTP timeout.
        connect_timeout: 5,
        connection: { application_name: APPLICATION_NAME, statement_timeout: config.statementTimeoutMs ?? 10_000 },
      };
      const split = readsPool(config.poolMax);
      // One gate over both pools: DB_POOL_MAX statements at most, whichever pool they run on.
      const gate = config.acquireTimeoutMs === undefined ? null : new AcquireGate({ slots: config.poolMax, timeoutMs: config.acquireTimeoutMs });
      const client = instrumented(postgres(url, { ...connect, max: split ? split.rest : config.poolMax, idle_timeout: 60 }), stats, gate);
      const readClient = split
        ? instrumented(
            postgres(url, {
              ...connect,
              connection: { ...connect.connection, application_name: READS_APPLICATION_NAME, plan_cache_mode: 'force_generic_plan' },
              max: split.reads,
              idle_timeout: 60,
            }),
            stats,
            gate,
          )
        : null;
      const db = drizzlePostgres(client, { schema });
      const reads = readClient ? drizzlePostgres(readClient, { schema }) : db;
      // Through the instrumented client: counted, and through the gate, so readiness never waits without a deadline.
      const ping = async (sql: postgres.Sql) => {
        await sql`select 1`;
      };
      return {
        db: db as unknown as Db,
        reads: reads as unknown as Db,
        kind: 'postgres',
        stats,
        poolStats: () => gate?.stats() ?? { inUse: 0, waiting: 0, timeouts: 0 },
        migrate: async () => {
          // drizzle's migrator takes no lock: replicas starting beside the migration Job must not race.
          // The lock lives on a connection of its own, outside the pool: holding one of the pool's
          // would leave the migrator none to run on when DB_POOL_MAX is 1.
          const lock = postgres(url, { ...connect, max: 1 });
          try {
            await lock`select pg_advisory_lock(${MIGRATION_LOCK})`;
            await migratePostgres(db, { migrationsFolder });
          } finally {
            await lock`select pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => undefined);
            await lock.end({ timeout: 5 });
          }
        },
        // Through the gate: readiness must not wait without a deadline behind a saturated pool either.
        ping: async () => {
          await ping(client);
          if (readClient) await ping(readClient);
        },
        close: async () => {
          await Promise.all([client.end({ timeout: 5 }), readClient?.end({ timeout: 5 })]);
        },
      };
    }
  }
}

/** libpq-only parameters: postgres.js would send them to the server as settings, which it refuses. */
const LIBPQ_TLS_PARAMS = ['sslmode', 'sslrootcert'];

/** The URL without those parameters, the rest untouched (not `new URL`: a multi-host URL is not a WHATWG URL). */
function withoutTlsParams(url: string): string {
  const at = url.indexOf('?');
  if (at < 0) return url;
  const params = new URLSearchParams(url.slice(at + 1));
  if (!LIBPQ_TLS_PARAMS.some((name) => params.has(name))) return url;
  for (const name of LIBPQ_TLS_PARAMS) params.delete(name);
  const query = params.toString();
  return query ? `${url.slice(0, at)}?${query}` : url.slice(0, at);
}

/**
 * postgres.js's `ssl` for an sslmode. Given a string it verifies nothing for
 * require/prefer/allow and, for any other string, verifies chain and host
 * against the system store only; so verify-ca and verify-full are spelled out
 * here as tls.connect options, with our CA.
 */
function sslOption(tls: DbTls): postgres.Options<Record<string, never>>['ssl'] {
  const ca = tls.ca ? { ca: tls.ca } : {};
  switch (tls.mode) {
    case 'disable':
      return false;
    case 'allow':
    case 'prefer':
      // postgres.js falls back to plain only for 'prefer' (its 'allow' insists on TLS); libpq's allow accepts either too.
      return 'prefer';
    case 'require':
      return 'require';
    case 'verify-ca':
      // The chain must lead to a trusted CA; the host name is not checked (libpq's verify-ca).
      return { ...ca, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case 'verify-full':
      // Left to itself, postgres.js has Node check a server reached by IP address against "localhost".
      return { ...ca, rejectUnauthorized: true, ...(tls.host ? { host: tls.host } : {}) };
  }
}

/**
 * The client drizzle sees. It counts the statements sent: each query
 * (`unsafe`, or a tagged template) and, per transaction, its `begin`, the
 * statements inside (a savepoint and its rollback too) and its `commit` or
 * `rollback`. With a gate, each statement outside a transaction and each
 * transaction (for its whole duration) first takes a slot, so none waits for
 * a connection past the deadline; statements inside a transaction run on its
 * reserved connection and take no slot of their own. Not counted: the
 * driver's own lookup of array types, once per connection it opens.
 *
 * Counted here, not through postgres.js's `debug` hook: with `debug` set,
 * postgres.js captures a stack trace for every query (`new Error()`, 2.3–2.4 %
 * of the server's CPU under load in `perf`), and the error of a failed query
 * carries its SQL text and parameter values as enumerable properties, which a
 * logger serializing the error would print.
 */
function instrumented<C extends postgres.Sql | postgres.TransactionSql>(client: C, stats: { statements: number }, gate: AcquireGate | null): C {
  const unsafe = (...args: Parameters<postgres.Sql['unsafe']>) => {
    stats.statements += 1;
    return gate ? gatedQuery(gate, client.unsafe(...args)) : client.unsafe(...args);
  };
  // `begin` on the pool, `savepoint` inside a transaction: a scope whose client counts too.
  const scope = (method: 'begin' | 'savepoint') => (...args: unknown[]) => {
    const open = (client as unknown as Record<typeof method, (...a: unknown[]) => Promise<unknown>>)[method];
    const run = () => open(...countedScope(args, stats, method === 'savepoint'));
    return gate ? gate.run(run).catch(rethrowTlsFailure) : run();
  };
  const begin = scope('begin');
  const savepoint = scope('savepoint');
  return new Proxy(client, {
    // A tagged template (`sql\`select 1\``), as the readiness ping sends; `sql(value)` builds a helper, no query.
    apply: (target, self, args: Parameters<postgres.Sql>) => {
      if (!isTemplate(args[0])) return Reflect.apply(target, self, args) as unknown;
      stats.statements += 1;
      const pending = Reflect.apply(target, self, args) as postgres.PendingQuery<postgres.Row[]>;
      return gate ? gatedQuery(gate, pending) : pending;
    },
    get: (target, property, receiver) => {
      if (property === 'unsafe') return unsafe;
      if (property === 'begin') return begin;
      if (property === 'savepoint') return savepoint;
      return Reflect.get(target, property, receiver) as unknown;
    },
  });
}

/**
 * The arguments of `begin` or `savepoint` (options or a name, then the
 * callback) with the callback given a counting client (no gate: a
 * transaction's statements run on its reserved connection). The opening
 * statement is counted once it has run (the callback is entered); the closing
 * one (`commit`, `rollback`; for a savepoint only its `rollback to`) once the
 * scope has settled.
 */
function countedScope(args: unknown[], stats: { statements: number }, savepoint: boolean): unknown[] {
  const fn = args.at(-1) as (tx: postgres.TransactionSql) => unknown;
  const wrapped = async (tx: postgres.TransactionSql) => {
    stats.statements += 1;
    try {
      const result = await fn(instrumented(tx, stats, null));
      if (!savepoint) stats.statements += 1;
      return result;
    } catch (e) {
      stats.statements += 1;
      throw e;
    }
  };
  return [...args.slice(0, -1), wrapped];
}

/** The strings of a tagged template call, as opposed to the argument of a helper such as `sql(name)`. */
function isTemplate(first: unknown): boolean {
  return Array.isArray(first) && Array.isArray((first as unknown as TemplateStringsArray).raw);
}

/**
 * A postgres.js query runs when first awaited; this stand-in awaits it only
 * once a slot is free. It offers what drizzle uses: `.values()` and awaiting.
 */
function gatedQuery(gate: AcquireGate, pending: postgres.PendingQuery<postgres.Row[]>) {
  let result: Promise<unknown> | undefined;
  const run = () => (result ??= gate.run(() => pending).catch(rethrowTlsFailure));
  const query = {
    values() {
      // Only sets the result format: the query itself is not sent until awaited.
      void pending.values();
      return query;
    },
    then<A = unknown, B = never>(onFulfilled?: ((value: unknown) => A | PromiseLike<A>) | null, onRejected?: ((reason: unknown) => B | PromiseLike<B>) | null) {
      return run().then(onFulfilled, onRejected);
    },
  };
  return query;
}

/**
 * TLS to PostgreSQL failed: the server's certificate was refused or the
 * handshake broke. A connection failure (SQLSTATE class 08), so requests get
 * SERVICE_UNAVAILABLE rather than an internal error.
 */
export class DatabaseTlsError extends Error {
  override name = 'DatabaseTlsError';
  readonly code = '08006';
  constructor(
    readonly tlsCode: string,
    options: { cause: unknown },
  ) {
    super(`TLS to the database failed (${tlsCode})`, options);
  }
}

/** Node's codes for certificate verification (OpenSSL's X509_V_ERR_* names) and TLS handshake failures. */
const TLS_FAILURE = /^(ERR_TLS_|ERR_SSL_|UNABLE_TO_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT$|SELF_SIGNED_CERT_IN_CHAIN$|HOSTNAME_MISMATCH$|INVALID_CA$|INVALID_PURPOSE$)/;

function tlsFailureCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TLS_FAILURE.test(code) ? code : undefined;
}

function rethrowTlsFailure(error: unknown): never {
  const code = tlsFailureCode(error);
  throw code ? new DatabaseTlsError(code, { cause: error }) : error;
}

/** Connection-level failures worth a one-line startup message (anything else keeps its own error). */
const CONNECT_FAILURE = /^(E[A-Z]+|CONNECT_TIMEOUT|CONNECTION_(CLOSED|DESTROYED|ENDED)|08...|28...|3D000|57P0[1-3])$/;

/**
 * Why the database cannot be used at start, in one line naming the settings
 * to check; undefined when the error is not a connection failure. Never
 * quotes the URL (it may hold a password).
 */
export function connectProblem(error: unknown, config: DbConfig): string | undefined {
  if (config.kind !== 'postgres') return undefined;
  const tlsCode = error instanceof DatabaseTlsError ? error.tlsCode : tlsFailureCode(error);
  if (tlsCode) {
    return `TLS to the database failed (${tlsCode}): check sslmode in DATABASE_URL and DATABASE_CA_FILE against the server's certificate`;
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || !CONNECT_FAILURE.test(code)) return undefined;
  const mode = config.tls?.mode ?? 'disable';
  // A server without TLS drops the connection at our handshake.
  const hint = mode !== 'disable' && (code === 'ECONNRESET' || code === 'CONNECTION_CLOSED') ? ` (sslmode=${mode}: does the server accept TLS?)` : '';
  return `cannot connect to the database (${code})${hint}`;
}

/** PGlite has no query hook: count at its two entry points (this instance only). */
function countStatements(client: PGlite, stats: { statements: number }): void {
  const query = client.query.bind(client);
  const exec = client.exec.bind(client);
  client.query = ((...args: Parameters<typeof query>) => {
    stats.statements += 1;
    return query(...args);
  }) as typeof client.query;
  client.exec = ((...args: Parameters<typeof exec>) => {
    stats.statements += 1;
    return exec(...args);
  });
}
