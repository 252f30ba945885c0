import 'reflect-metadata';
import { GraphQLClient } from 'graphql-request';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import postgres from 'postgres';
import { signToken } from '../../src/auth/authenticate.js';
import { start, type Running } from '../../src/boot.js';
import { loadConfig, type Config } from '../../src/config.js';
import { customerAt, type SeedPlan } from '../../src/db/seed/generate.js';
import { seedDatabase } from '../../src/db/seed/load.js';
import type { CustomerPlain } from '../../src/crypto/customer-record.js';

export interface TestServer {
  url: string;
  config: Config;
  running: Running;
  plan: SeedPlan;
  customers: CustomerPlain[];
  token(principalId: string): Promise<string>;
  client(principalId: string): Promise<GraphQLClient>;
  /** Raw POST, for status codes and error bodies. */
  post(body: unknown, headers?: Record<string, string>): Promise<{ status: number; text: string; json: any }>;
  stop(): Promise<void>;
}

/** A fresh database per test file: PGlite in memory by default, a new PostgreSQL database when DATABASE_URL is set. */
async function freshDatabase(): Promise<{ url?: string; drop: () => Promise<void> }> {
  const base = process.env.DATABASE_URL;
  if (!base) return { drop: async () => undefined };
  const name = `custos_t_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  const admin = postgres(base, { max: 1, onnotice: () => undefined });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(base, { max: 1, onnotice: () => undefined });
      await a.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await a.end();
    },
  };
}

export interface TestServerOptions {
  customers?: number;
  env?: Record<string, string>;
  /** Collects every exported span (tests scan them for personal values). */
  spanExporter?: SpanExporter;
  /** Collects every log line at debug level. */
  logLines?: string[];
  /** PostgreSQL only: connect through this local port (a proxy the test controls) instead of the server's. */
  viaPort?: number;
}

export async function startTestServer(opts: TestServerOptions = {}): Promise<TestServer> {
  const database = await freshDatabase();
  if (database.url && opts.viaPort) {
    const url = new URL(database.url);
    url.host = `127.0.0.1:${opts.viaPort}`;
    database.url = url.toString();
  }
  const config = loadConfig({
    NODE_ENV: 'test',
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: 'memory://',
    LOG_LEVEL: 'silent',
    SEED_DEMO: 'never',
    ...(database.url ? { DATABASE_URL: database.url } : {}),
    ...opts.env,
  });
  const logger = opts.logLines ? pino({ level: 'debug' }, { write: (line: string) => void opts.logLines!.push(line) }) : undefined;
  const running = await start(config, { ...(opts.spanExporter ? { spanExporter: opts.spanExporter } : {}), ...(logger ? { logger } : {}) });
  const summary = await seedDatabase(running.db, config.keys, { customers: opts.customers ?? 120 });
  const customers = Array.from({ length: summary.customers }, (_, i) => customerAt(summary.plan, i));
  const url = `http://127.0.0.1:${running.port}/graphql`;
  const token = (id: string) => signToken(config.auth, id);
  return {
    url,
    config,
    running,
    plan: summary.plan,
    customers,
    token,
    client: async (id) => new GraphQLClient(url, { headers: { authorization: `Bearer ${await token(id)}` } }),
    post: async (body, headers = {}) => {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...headers },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      const text = await res.text();
      let json: any;
      try {
        json = JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: res.status, text, json };
    },
    stop: async () => {
      await running.stop();
      await database.drop();
    },
  };
}

/** POSTs a query as a principal and returns the parsed body (data and errors together). */
export async function gql(server: TestServer, principalId: string, query: string, variables?: Record<string, unknown>) {
  const token = await server.token(principalId);
  return server.post({ query, variables }, { authorization: `Bearer ${token}` });
}
