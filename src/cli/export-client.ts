/**
 * How the export CLI talks to custos: GraphQL (graphql-request) to find the
 * grant and the size of its source, and GET /exports/<grant>/rows for the
 * pages. Refusals keep custos's message and code; network failures and a
 * briefly unavailable custos are retried with backoff.
 */
import { ClientError, GraphQLClient } from 'graphql-request';
import type { Format } from './export-file.js';

const RETRIES = 4;

/** Ends the run with a message on stderr and an exit code; never a stack trace. */
export class Stop extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** custos said no (or answered something this client cannot use): retrying will not help. */
export class Refusal extends Stop {
  constructor(
    message: string,
    readonly code: string,
    readonly reason: string | undefined,
  ) {
    super(`${message} [${code}${reason ? ` ${reason}` : ''}]`, 3);
  }
}

/** The run stopped before the end (Ctrl-C, the network): running the same command again resumes. */
export class Interrupted extends Stop {}

/** A failure worth retrying: the network, or custos briefly unavailable. */
class Transient extends Error {}

export interface Grant {
  id: string;
  kind: string;
  dataset: string | null;
  state: string;
  rowLimit: number;
  rowsExported: number;
  /** kind CUSTOMERS: the list's filter and fields. */
  customers: { filter?: Record<string, string> } | null;
}

const GRANT = 'id kind dataset customers state rowLimit rowsExported requestedBy';
type GrantNode = Grant & { requestedBy: string };

/** Where custos is and who asks; `signal` aborts a request under way. */
export interface Connection {
  url: URL;
  token: string;
  signal: AbortSignal;
}

const endpoint = (url: URL, path: string) => new URL(`${url.pathname.replace(/\/+$/, '')}${path}`, url);

/** The GraphQL client of a connection (graphql-request). */
export function graphqlClient(c: Connection): GraphQLClient {
  return new GraphQLClient(endpoint(c.url, '/graphql').toString(), { headers: { authorization: `Bearer ${c.token}` }, signal: c.signal });
}

/** A GraphQL request, its refusals as Refusal and its network failures as Transient. */
async function ask<T>(client: GraphQLClient, query: string, variables: Record<string, unknown>): Promise<T> {
  try {
    return await client.request<T>(query, variables);
  } catch (error) {
    if (error instanceof ClientError) {
      const first = error.response.errors?.[0];
      const code = typeof first?.extensions?.code === 'string' ? first.extensions.code : `HTTP_${error.response.status}`;
      if (code === 'SERVICE_UNAVAILABLE') throw new Transient(first?.message ?? 'service unavailable');
      throw new Refusal(first?.message ?? `custos answered HTTP ${error.response.status}`, code, first?.extensions?.reason as string | undefined);
    }
    throw new Transient(networkReason(error));
  }
}

/** The grant to pull: --grant as given (custos judges it), else the caller's newest usable grant for --dataset. */
export async function findGrant(client: GraphQLClient, args: { grant?: string | undefined; dataset?: string | undefined }): Promise<Grant> {
  if (args.grant) {
    const { exportRequest: grant } = await ask<{ exportRequest: Grant }>(client, `query ($id: ID!) { exportRequest(id: $id) { ${GRANT} } }`, { id: args.grant });
    if (args.dataset && grant.dataset !== args.dataset) throw new Stop(`grant ${grant.id} is for ${grant.dataset ?? 'a customer list'}, not dataset ${args.dataset}`, 2);
    return grant;
  }
  const { me } = await ask<{ me: { id: string } }>(client, '{ me { id } }', {});
  const query = `query ($after: String) { exportRequests(status: "approved", first: 50, after: $after) { nodes { ${GRANT} } pageInfo { hasNextPage endCursor } } }`;
  let after: string | null = null;
  // Newest first: the first match is the newest grant.
  for (let pages = 0; pages < 20; pages++) {
    type Reply = { exportRequests: { nodes: GrantNode[]; pageInfo: { hasNextPage: boolean; endCursor: string | null } } };
    const { exportRequests: page }: Reply = await ask<Reply>(client, query, { after });
    const found = page.nodes.find((g) => g.dataset === args.dataset && g.state === 'APPROVED' && g.requestedBy === me.id);
    if (found) return found;
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
  }
  throw new Stop(`no approved export grant for dataset ${args.dataset}; ask for one with requestExport and have it approved`, 2);
}

/** Rows the export would hold without a cap (the dataset's released rows, the list's matches); unknown when custos will not say. */
export async function sourceTotal(client: GraphQLClient, grant: Grant): Promise<number | undefined> {
  type Count = { source: { totalCount: number } };
  const reply =
    grant.kind === 'DATASET' && grant.dataset
      ? ask<Count>(client, 'query ($name: String!) { source: dataset(name: $name, first: 1) { totalCount } }', { name: grant.dataset })
      : ask<Count>(client, 'query ($filter: CustomerFilter) { source: customers(first: 1, filter: $filter) { totalCount } }', { filter: grant.customers?.filter ?? {} });
  return reply.then((r) => r.source.totalCount, () => undefined);
}

export interface Page {
  body: Buffer;
  rows: number;
  next: string | null;
  remaining: number | undefined;
}

/** One page of the grant after `cursor`, whole or not at all. */
export async function fetchPage(c: Connection, q: { grant: string; format: Format; limit: number; cursor: string | null }): Promise<Page> {
  const { signal } = c;
  const url = endpoint(c.url, `/exports/${q.grant}/rows`);
  url.searchParams.set('format', q.format);
  url.searchParams.set('limit', String(q.limit));
  if (q.cursor !== null) url.searchParams.set('after', q.cursor);
  let body: Buffer;
  let res: Response;
  try {
    res = await fetch(url, { headers: { authorization: `Bearer ${c.token}` }, signal });
    body = Buffer.from(await res.arrayBuffer());
  } catch (error) {
    if (signal.aborted) throw new Interrupted('stopped', 130);
    throw new Transient(networkReason(error));
  }
  if (!res.ok) throw refusalOf(res.status, body.toString('utf8'));
  const rows = Number(res.headers.get('x-export-rows'));
  if (!Number.isSafeInteger(rows) || rows < 0) throw new Stop(`${url.origin} answered without x-export-rows: is --url a custos with paged exports?`, 1);
  // Chunked bodies cut short normally fail above; a body that ends mid-line is caught here.
  if (rows > 0 && body.at(-1) !== 0x0a) throw new Transient('a page arrived incomplete');
  const remaining = res.headers.get('x-export-remaining');
  return { body, rows, next: res.headers.get('x-export-next'), remaining: remaining === null ? undefined : Number(remaining) };
}

function refusalOf(status: number, text: string): Error {
  let first: { message?: string; extensions?: { code?: string; reason?: string } } | undefined;
  try {
    first = (JSON.parse(text) as { errors?: Array<typeof first> }).errors?.[0];
  } catch {
    // Not custos's JSON (a proxy's error page): the status is all there is.
  }
  if (status === 502 || status === 503 || status === 504) return new Transient(first?.message ?? `HTTP ${status}`);
  return new Refusal(first?.message ?? `custos answered HTTP ${status}`, first?.extensions?.code ?? `HTTP_${status}`, first?.extensions?.reason);
}

function networkReason(error: unknown): string {
  const cause = (error as { cause?: unknown } | null)?.cause;
  const code = (cause as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return ((cause ?? error) as Error)?.message?.split('\n')[0] ?? 'network error';
}

/** Runs `attempt` again after transient failures (0.5, 1, 2, 4 s) unless `stop` is aborted; then gives up with the last reason. */
export async function withRetry<T>(attempt: () => Promise<T>, stop: AbortSignal, onGiveUp: (reason: string) => Stop): Promise<T> {
  for (let tries = 0; ; tries++) {
    try {
      return await attempt();
    } catch (error) {
      if (!(error instanceof Transient)) throw error;
      if (stop.aborted) throw new Interrupted('stopped', 130);
      if (tries >= RETRIES) throw onGiveUp(error.message);
      const delayMs = 500 * 2 ** tries;
      process.stderr.write(`export: ${error.message}; retrying in ${delayMs / 1000} s (${tries + 1}/${RETRIES})\n`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delayMs);
        stop.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
      });
      if (stop.aborted) throw new Interrupted('stopped', 130);
    }
  }
}
