import { createServer, type Server } from 'node:http';
import { sendJson, createGraphqlHandler, type HandlerDeps } from './graphql-handler.js';

export type AppDeps = HandlerDeps;

export interface App {
  server: Server;
  listen(port: number, host?: string): Promise<number>;
  /** Readiness turns 503 at once; the listener stops accepting; in-flight requests finish. */
  drain(): Promise<void>;
}

/** HTTP routing: /graphql, and the health endpoints beside it. */
export async function createApp(deps: AppDeps): Promise<App> {
  const { db, bundle, logger, metrics } = deps;
  const graphql = await createGraphqlHandler(deps);
  let draining = false;

  const server = createServer((req, res) => {
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
          return sendJson(res, 404, { error: 'not found' });
      }
    };
    route().catch((e: unknown) => {
      logger.error({ err: { name: (e as Error)?.name } }, 'request failed');
      if (!res.headersSent) sendJson(res, 500, { errors: [{ message: 'internal error', extensions: { code: 'INTERNAL_SERVER_ERROR' } }] });
      else res.end();
    });
  });

  // Longer than a load balancer's idle timeout (60 s is common): the proxy, not us, closes idle
  // keep-alive connections, so a reused connection is never reset under a request.
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

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
