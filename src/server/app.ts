import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Authenticator } from '../auth/authenticate.js';
import type { PolicyBundle } from '../authz/policy/bundle.js';
import { RequestAuthz } from '../authz/request-authz.js';
import type { Config } from '../config.js';
import type { DbHandle } from '../db/client.js';
import type { Context } from '../graphql/context.js';
import type { Logger } from '../telemetry/logger.js';
import { formatError } from './format-error.js';
import { createSchema } from './schema.js';

export interface AppDeps {
  config: Config;
  db: DbHandle;
  bundle: PolicyBundle;
  logger: Logger;
}

export interface App {
  server: Server;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

const MAX_BODY_BYTES = 1_000_000;

class BodyTooLarge extends Error {}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) throw new BodyTooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

/** Wires HTTP → Apollo → resolvers, with authentication in the context and health endpoints beside it. */
export async function createApp(deps: AppDeps): Promise<App> {
  const { config, db, bundle, logger } = deps;
  const auth = new Authenticator(db.db, config.auth);
  const apollo = new ApolloServer<Context>({
    schema: await createSchema(),
    formatError,
    includeStacktraceInErrorResponses: false,
    introspection: !config.production,
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    plugins: config.production ? [ApolloServerPluginLandingPageDisabled()] : [],
  });
  await apollo.start();

  const context = async (req: IncomingMessage): Promise<Context> => {
    const principal = await auth.authenticate(req.headers.authorization);
    return {
      principal,
      authz: new RequestAuthz(bundle, principal),
      db: db.db,
      keys: config.keys,
      cursorSecret: config.cursorSecret,
      maxPageSize: config.maxPageSize,
      faults: [],
      logger,
      loaders: new Map(),
    };
  };

  const graphql = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    let body: string;
    try {
      body = req.method === 'POST' ? await readBody(req) : '';
    } catch (e) {
      if (e instanceof BodyTooLarge) return sendJson(res, 413, { errors: [{ message: 'request body too large', extensions: { code: 'PAYLOAD_TOO_LARGE' } }] });
      throw e;
    }
    const headers = new HeaderMap();
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v);
    let parsed: unknown = body;
    if (body && (headers.get('content-type') ?? '').includes('application/json')) {
      try {
        parsed = JSON.parse(body);
      } catch {
        return sendJson(res, 400, { errors: [{ message: 'malformed JSON body', extensions: { code: 'BAD_REQUEST' } }] });
      }
    }
    const result = await apollo.executeHTTPGraphQLRequest({
      httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body: parsed },
      context: () => context(req),
    });
    for (const [k, v] of result.headers) res.setHeader(k, v);
    res.statusCode = result.status ?? 200;
    if (result.body.kind === 'complete') return void res.end(result.body.string);
    for await (const chunk of result.body.asyncIterator) res.write(chunk);
    res.end();
  };

  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = async () => {
      switch (url.pathname) {
        case '/graphql':
          return graphql(req, res, url);
        case '/healthz':
          return sendJson(res, 200, { status: 'ok' });
        case '/readyz':
          try {
            await db.ping();
            return sendJson(res, 200, { status: 'ready', policyVersion: bundle.version });
          } catch {
            return sendJson(res, 503, { status: 'unavailable' });
          }
        default:
          return sendJson(res, 404, { error: 'not found' });
      }
    };
    route().catch((e: unknown) => {
      logger.error({ err: { name: (e as Error)?.name } }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      else res.end();
    });
  });

  return {
    server,
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      }),
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await apollo.stop();
    },
  };
}
