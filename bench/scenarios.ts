/**
 * The benchmark's operations: real GraphQL documents sent with real tokens,
 * the pools they draw variables from, and the sample check each variant must
 * pass before it is put under load.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSchema, getNamedType, isLeafType, isObjectType, type GraphQLObjectType } from 'graphql';
import type { Variant } from './servers.js';

export type ScenarioKey = 'S1' | 'S2' | 'S3' | 'S4' | 'S5';
export const scenarioKeys: readonly ScenarioKey[] = ['S1', 'S2', 'S3', 'S4', 'S5'];

export interface Scenario {
  key: ScenarioKey;
  title: string;
  principal: 'u-mgr-1' | 'u-auditor-1';
  operationName: string;
  query: string;
  /** Variables of each request: one fixed set, or one per id of the pool. */
  variables: 'none' | 'id' | 'traceId';
}

const fields10 = 'id name phone email city province tier segment createdAt ownerId';

export const scenarios: Record<Exclude<ScenarioKey, 'S5'>, Scenario> = {
  S1: {
    key: 'S1',
    title: 'list: 50 customers of the department, 10 fields, phone/email masked',
    principal: 'u-mgr-1',
    operationName: 'S1List',
    query: `query S1List { customers(first: 50) { edges { node { ${fields10} } } } }`,
    variables: 'none',
  },
  S2: {
    key: 'S2',
    title: 'nested: 20 customers with their 10 latest orders',
    principal: 'u-mgr-1',
    operationName: 'S2Nested',
    query: 'query S2Nested { customers(first: 20) { edges { node { id name orders(first: 10) { edges { node { id amount placedAt status } } } } } } }',
    variables: 'none',
  },
  S3: {
    key: 'S3',
    title: 'point: one customer by id (random permitted id)',
    principal: 'u-mgr-1',
    operationName: 'S3Point',
    query: `query S3Point($id: ID!) { customer(id: $id) { ${fields10} } }`,
    variables: 'id',
  },
  S4: {
    key: 'S4',
    title: 'reveal: S3 with phone(purpose: CONTACT), audited',
    principal: 'u-mgr-1',
    operationName: 'S4Reveal',
    query: `query S4Reveal($id: ID!) { customer(id: $id) { ${fields10.replace('phone', 'phone(purpose: CONTACT)')} } }`,
    variables: 'id',
  },
};

/** Leaf fields of a type (one level into object fields), skipping fields with required arguments. */
function selectionOf(type: GraphQLObjectType, depth = 1): string {
  const parts: string[] = [];
  for (const field of Object.values(type.getFields())) {
    if (field.args.some((a) => a.type.toString().endsWith('!') && a.defaultValue === undefined)) continue;
    const named = getNamedType(field.type);
    if (isLeafType(named)) parts.push(field.name);
    else if (isObjectType(named) && depth > 0) {
      const inner = selectionOf(named, depth - 1);
      if (inner) parts.push(`${field.name} { ${inner} }`);
    }
  }
  return parts.join(' ');
}

/** S5 when schema.graphql has `auditTrail(traceId: String!)`, selecting every leaf of its events; else why not. */
export function auditScenario(repoRoot: string): Scenario | { unavailable: string } {
  const schema = buildSchema(readFileSync(join(repoRoot, 'schema.graphql'), 'utf8'));
  const field = schema.getQueryType()?.getFields().auditTrail;
  if (!field) return { unavailable: 'n/a (not in schema)' };
  const event = getNamedType(field.type);
  if (!isObjectType(event) || !field.args.some((a) => a.name === 'traceId')) return { unavailable: 'n/a (auditTrail has an unexpected shape)' };
  return {
    key: 'S5',
    title: 'auditor: auditTrail(traceId) of a recent S4 trace',
    principal: 'u-auditor-1',
    operationName: 'S5Audit',
    query: `query S5Audit($traceId: String!) { auditTrail(traceId: $traceId) { ${selectionOf(event)} } }`,
    variables: 'traceId',
  };
}

export interface GqlReply {
  status: number;
  json: { data?: Record<string, unknown> | null; errors?: Array<{ message?: string; extensions?: { code?: string } }>; extensions?: { traceId?: string } } | undefined;
}

export async function post(url: string, token: string, body: string): Promise<GqlReply> {
  const res = await fetch(`${url}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body });
  const text = await res.text();
  let json: GqlReply['json'];
  try {
    json = JSON.parse(text) as GqlReply['json'];
  } catch {
    json = undefined;
  }
  return { status: res.status, json };
}

interface IdPage {
  customers: { edges: Array<{ node: { id: string } }>; pageInfo: { endCursor: string | null; hasNextPage: boolean } };
}

/** Ids the principal may see, fetched once through custos itself (pages of 100), shuffled deterministically. */
export async function idPool(url: string, token: string, size: number): Promise<string[]> {
  const query = 'query Ids($after: String) { customers(first: 100, after: $after) { edges { node { id } } pageInfo { endCursor hasNextPage } } }';
  const ids: string[] = [];
  let after: string | null = null;
  while (ids.length < size) {
    const reply = await post(url, token, JSON.stringify({ query, variables: { after } }));
    const page = reply.json?.data as IdPage | undefined;
    if (!page) throw new Error(`id pool: ${JSON.stringify(reply.json?.errors ?? reply.status)}`);
    ids.push(...page.customers.edges.map((e) => e.node.id));
    if (!page.customers.pageInfo.hasNextPage) break;
    after = page.customers.pageInfo.endCursor;
  }
  let seed = 42;
  for (let i = ids.length - 1; i > 0; i--) {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    const j = seed % (i + 1);
    [ids[i], ids[j]] = [ids[j]!, ids[i]!];
  }
  return ids.slice(0, size);
}

export interface Pools {
  ids: string[];
  traceId?: string;
}

/** Request bodies of a scenario: one, or one per pooled id. */
export function bodiesOf(s: Scenario, pools: Pools): string[] {
  const body = (variables?: Record<string, string>) => JSON.stringify({ operationName: s.operationName, query: s.query, ...(variables ? { variables } : {}) });
  switch (s.variables) {
    case 'none':
      return [body()];
    case 'id':
      return pools.ids.map((id) => body({ id }));
    case 'traceId':
      return pools.traceId ? [body({ traceId: pools.traceId })] : [];
  }
}

/** An even mix: `perList` bodies of each list, taken in turn (A B C A B C …), short lists repeating. */
export function interleave(lists: string[][], perList: number): string[] {
  const usable = lists.filter((l) => l.length > 0);
  return Array.from({ length: perList * usable.length }, (_, i) => {
    const list = usable[i % usable.length]!;
    return list[Math.floor(i / usable.length) % list.length]!;
  });
}

type Node = Record<string, unknown>;
const edgesOf = (data: Node | null | undefined) => ((data?.customers as { edges?: Array<{ node: Node }> } | undefined)?.edges ?? []).map((e) => e.node);
const masked = (v: unknown) => v === null || (typeof v === 'string' && /^\*+\d{4}$/.test(v));

/** What is wrong with a sample reply (undefined: fine). The off variant serves masked phones even on S4: it has no reveal grant. */
export function checkReply(key: ScenarioKey, variant: Variant, reply: GqlReply): string | undefined {
  const errors = reply.json?.errors;
  if (errors?.length) return `HTTP ${reply.status}, ${errors[0]?.extensions?.code ?? 'error'}: ${errors[0]?.message ?? ''}`.slice(0, 120);
  if (reply.status !== 200) return `HTTP ${reply.status}`;
  const data = reply.json?.data;
  switch (key) {
    case 'S1': {
      const nodes = edgesOf(data);
      if (nodes.length !== 50) return `expected 50 customers, got ${nodes.length}`;
      return nodes.every((n) => masked(n.phone)) ? undefined : 'phone not masked';
    }
    case 'S2': {
      const nodes = edgesOf(data);
      if (nodes.length !== 20) return `expected 20 customers, got ${nodes.length}`;
      const orders = nodes.map((n) => ((n.orders as { edges: unknown[] } | undefined)?.edges ?? []).length);
      return orders.some((n) => n > 10) || orders.every((n) => n === 0) ? `unexpected order pages ${orders.join(',')}` : undefined;
    }
    case 'S3':
    case 'S4': {
      const c = data?.customer as Node | null | undefined;
      if (!c) return 'customer is null';
      const phone = c.phone;
      if (key === 'S3' || variant === 'off') return masked(phone) ? undefined : 'phone not masked';
      return phone === null || (typeof phone === 'string' && /^\+?\d{7,}$/.test(phone)) ? undefined : 'phone not revealed';
    }
    case 'S5':
      return Array.isArray(data?.auditTrail) && data.auditTrail.length > 0 ? undefined : 'empty audit trail';
  }
}
