import { ApolloServer, HeaderMap } from '@apollo/server';
import { ApolloServerPluginCacheControlDisabled, ApolloServerPluginLandingPageDisabled } from '@apollo/server/plugin/disabled';
import { ApolloArmor } from '@escape.tech/graphql-armor';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Authenticator } from '../auth/authenticate.js';
import type { PolicyBundle } from '../authz/policy/bundle.js';
import type { Principal } from '../authz/principal.js';
import { RequestAuthz } from '../authz/request-authz.js';
import type { Config } from '../config.js';
import type { DbHandle } from '../db/client.js';
import { installArgumentValuesFastPath } from '../graphql/argument-values.js';
import type { Context } from '../graphql/context.js';
import { resolveCellsDirectly } from '../graphql/render.js';
import { customerPurposeFields } from '../modules/customer/purpose-fields.js';
import type { Logger } from '../telemetry/logger.js';
import { Attr } from '../telemetry/names.js';
import type { Telemetry } from '../telemetry/tracing.js';
import { formatError } from './format-error.js';
import type { Metrics } from './metrics.js';
import { requestPlugin, type AuditSink } from './request-plugin.js';
import { createSchema } from './schema.js';

export interface HandlerDeps {
  config: Config;
  db: DbHandle;
  bundle: PolicyBundle;
  logger: Logger;
  telemetry: Telemetry;
  audit: AuditSink | null;
  metrics: Metrics;
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

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
  res.end(JSON.stringify(body));
}

/** The request's own deadline: a stuck dependency answers 503 rather than holding the client until its timeout. */
async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** Waits for the request's audit append; false (logged, names only) when its records could not be committed. */
async function auditCommitted(context: Context | undefined, logger: Logger): Promise<boolean> {
  const committed = context?.audit.committed;
  if (!committed) return true;
  try {
    await committed;
    return true;
  } catch (e) {
    logger.error({ err: { name: (e as Error).name } }, 'audit store unavailable: response withheld');
    return false;
  }
}

/** Operation type for metric labels only (bounded: query | mutation), read cheaply from the raw text. */
function operationType(parsed: unknown, url: URL): 'query' | 'mutation' {
  const query = (parsed as { query?: unknown } | null)?.query;
  const text = typeof query === 'string' ? query : (url.searchParams.get('query') ?? '');
  return /^\s*mutation\b/.test(text) ? 'mutation' : 'query';
}

/** Limits checked before execution (graphql-armor): depth, cost, aliases, directives, tokens; suggestions off in production. */
function armor(config: Config) {
  return new ApolloArmor({
    // customers → edges → node → orders → edges → node → field, with fragments counted: 11.
    maxDepth: { n: 12 },
    maxAliases: { n: 15 },
    maxDirectives: { n: 20 },
    maxTokens: { n: 2000 },
    // A 20-customer page with 10 orders each costs ~16,000 by armor's rule; refuse well beyond that.
    costLimit: { maxCost: 30000 },
    blockFieldSuggestion: { enabled: config.production },
  }).protect();
}

/** The per-request context of an authenticated principal (GraphQL and the export stream alike). */
export function requestContext(deps: HandlerDeps, principal: Principal, span: Context['span']): Context {
  const { config, db, bundle, logger, telemetry } = deps;
  return {
    principal,
    authz: new RequestAuthz(bundle, principal),
    db: db.db,
    reads: db.reads,
    keys: config.keys,
    cursorSecret: config.cursorSecret,
    pseudonymKey: config.pseudonymKey,
    maxPageSize: config.maxPageSize,
    faults: [],
    logger: logger.child({ traceId: span.spanContext().traceId }),
    loaders: new Map(),
    telemetry,
    span,
    decisions: [],
    audit: { records: 0, commitMs: 0, flushMs: 0 },
  };
}

/** Apollo behind a plain node:http handler: body limit, authentication in the context, the operation span around it all. */
export async function createGraphqlHandler(deps: HandlerDeps) {
  const { config, db, bundle, logger, telemetry, metrics } = deps;
  installArgumentValuesFastPath();
  const auth = new Authenticator(db.db, config.auth);
  const protection = armor(config);
  const schema = await createSchema();
  resolveCellsDirectly(schema, 'Customer', customerPurposeFields);
  const apollo = new ApolloServer<Context>({
    schema,
    formatError,
    includeStacktraceInErrorResponses: false,
    introspection: !config.production,
    csrfPrevention: true,
    allowBatchedHttpRequests: false,
    validationRules: protection.validationRules,
    plugins: [
      ...(protection.plugins as never[]),
      requestPlugin({ audit: deps.audit, metrics }),
      // No HTTP caching of customer data, and no per-field cache hint bookkeeping (measured: ~6% of S1).
      ApolloServerPluginCacheControlDisabled(),
      ...(config.production ? [ApolloServerPluginLandingPageDisabled()] : []),
    ],
  });
  await apollo.start();

  const contextFor = async (req: IncomingMessage, span: Context['span']): Promise<Context> => {
    // The principal's status is read every few seconds (cached between): noted on the operation span rather
    // than as a span of its own, so that spans per request do not vary with the cache.
    const principal = await auth.authenticate(req.headers.authorization, async (run) => {
      const started = performance.now();
      try {
        return await run();
      } finally {
        span.setAttribute(Attr.principalLookupMs, Math.round((performance.now() - started) * 10) / 10);
      }
    });
    span.setAttributes({ [Attr.principal]: telemetry.pseudonym(principal.id), [Attr.roles]: principal.roles, [Attr.policyVersion]: bundle.version });
    return requestContext(deps, principal, span);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    let body: string;
    try {
      body = req.method === 'POST' ? await readBody(req) : '';
    } catch (e) {
      if (e instanceof BodyTooLarge) {
        // The rest of the body is never read: the connection cannot be reused, say so.
        res.setHeader('connection', 'close');
        return sendJson(res, 413, { errors: [{ message: 'request body too large', extensions: { code: 'PAYLOAD_TOO_LARGE' } }] });
      }
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
    const operation = operationType(parsed, url);
    const started = process.hrtime.bigint();
    const span = telemetry.startOperation(telemetry.parentFrom(req.headers));
    let context: Context | undefined;
    metrics.inFlight.inc();
    try {
      const result = await withDeadline(
        apollo
          .executeHTTPGraphQLRequest({
            httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body: parsed },
            context: async () => (context = await contextFor(req, span)),
          })
          .then(async (response) => ((await auditCommitted(context, logger)) ? response : null)),
        config.requestTimeoutMs,
      );
      if (result === undefined) {
        span.setAttribute(Attr.outcome, 'deadline');
        metrics.requests.inc({ operation, outcome: 'deadline' });
        return sendJson(res, 503, { errors: [{ message: 'request deadline exceeded', extensions: { code: 'SERVICE_UNAVAILABLE' } }] });
      }
      if (result === null) {
        // Strict audit: no record, no data.
        span.setAttribute(Attr.outcome, 'audit_unavailable');
        metrics.requests.inc({ operation, outcome: 'audit_unavailable' });
        return sendJson(res, 503, {
          errors: [{ message: 'audit trail unavailable: request refused', extensions: { code: 'SERVICE_UNAVAILABLE' } }],
          extensions: { traceId: span.spanContext().traceId },
        });
      }
      for (const [k, v] of result.headers) res.setHeader(k, v);
      res.statusCode = result.status ?? 200;
      const text = result.body.kind === 'complete' ? result.body.string : '';
      const outcome = res.statusCode >= 400 ? 'refused' : text.includes('"errors"') ? 'error' : 'ok';
      span.setAttribute(Attr.outcome, outcome);
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      logger.info({ traceId: span.spanContext().traceId, operation, outcome, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'graphql request');
      metrics.requests.inc({ operation, outcome });
      metrics.latency.observe({ operation, outcome }, ms / 1000);
      if (result.body.kind === 'complete') return void res.end(text);
      for await (const chunk of result.body.asyncIterator) res.write(chunk);
      res.end();
    } finally {
      metrics.inFlight.dec();
      span.end();
    }
  };

  return { handle, stop: () => apollo.stop() };
}
