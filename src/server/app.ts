import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import { createExportRoute } from './export-route.js';
import { sendJson, createGraphqlHandler, type HandlerDeps } from './graphql-handler.js';

export type AppDeps = HandlerDeps;

export interface App {
  /** node:https when the config carries a certificate and key (TLS_CERT_FILE, TLS_KEY_FILE), node:http otherwise. */
  server: Server | TlsServer;
  scheme: 'http' | 'https';
  listen(port: number, host?: string): Promise<number>;
  /** Readiness turns 503 at once; the listener stops accepting; in-flight requests finish. */
  drain(): Promise<void>;
}

/** HTTP routing: /graphql, and the health endpoints beside it. */
export async function createApp(deps: AppDeps): Promise<App> {
  const { db, bundle, logger, metrics } = deps;
  const graphql = await createGraphqlHandler(deps);
  const exports = createExportRoute(deps);
  let draining = false;

  const onRequest = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = async () => {
      switch (url.pathname) {
        case '/graphql':
          return graphql.handle(req, res, url);
        case '/healthz':
          return sendJson(res, 200, { status: 'ok' });
        case '/readyz':
          if (draining) return sendJson(res, 503, { status: 'draining' });
          try {
            await db.ping();
            return sendJson(res, 200, { status: 'ready', policyVersion: bundle.version });
          } catch {
            return sendJson(res, 503, { status: 'unavailable' });
          }
        case '/metrics':
          res.writeHead(200, { 'content-type': metrics.registry.contentType });
          return void res.end(await metrics.registry.metrics());
        default:
          if (exports.matches(url.pathname)) return exports.handle(req, res, url);
          return sendJson(res, 404, { error: 'not found' });
      }
    };
    route().catch((e: unknown) => {
      logger.error({ err: { name: (e as Error)?.name } }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      else res.end();
    });
  };
  // Same routes, limits and drain either way; only the listener differs.
  const tls = deps.config.tls;
  // A client that connects but never completes the handshake is not an HTTP connection yet: no HTTP
  // timeout reaches it and closeIdleConnections() does not see it, so bound the handshake itself (default 120 s).
  const server = tls ? createTlsServer({ cert: tls.cert, key: tls.key, handshakeTimeout: 10_000 }, onRequest) : createServer(onRequest);

  // Longer than a load balancer's idle timeout (60 s is common): the proxy, not us, closes idle
  // keep-alive connections, so a reused connection is never reset under a request.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  return {
    server,
    scheme: tls ? 'https' : 'http',
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          const address = server.address();
          resolve(typeof address === 'object' && address ? address.port : port);
        });
      }),
    drain: async () => {
      // Readiness fails first, while the listener still serves: load balancers stop sending before we stop accepting.
      draining = true;
      await new Promise((r) => setTimeout(r, deps.config.shutdownDelayMs));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await closed;
      await graphql.stop();
    },
  };
}
