/**
 * In-process micro-benchmark of GraphQL execution alone: S1's document (50
 * customers × ten fields) over one policed read held in memory, executed by
 * graphql-js and by custos's compiled executor (graphql-jit behind Apollo's
 * gateway interface), each result turned into JSON as Apollo does. No
 * database, no HTTP: the figure is what the executor costs per request.
 *
 *   npx tsx bench/execute-micro.ts
 */
import 'reflect-metadata';
import { execute, parse, type ExecutionResult, type GraphQLSchema, type OperationDefinitionNode } from 'graphql';
import { loadBundle } from '../src/authz/policy/bundle.js';
import type { Principal } from '../src/authz/principal.js';
import { planProjection } from '../src/authz/projection.js';
import { readRows, type ReadContext } from '../src/authz/reader.js';
import { RequestAuthz } from '../src/authz/request-authz.js';
import type { Row } from '../src/db/execute.js';
import { compiledExecutor } from '../src/graphql/executor.js';
import { Edge, resolveCellsDirectly, toNode } from '../src/graphql/render.js';
import { customerPurposeFields } from '../src/modules/customer/purpose-fields.js';
import { createSchema } from '../src/server/schema.js';
import { scenarios } from './scenarios.js';
import { repoRoot } from './servers.js';

const ROWS = 50;
const RUNS = 3000;
const ROUNDS = 6;

const bundle = await loadBundle(`${repoRoot}/policies`);
const manager: Principal = { id: 'u-mgr-1', displayName: 'u-mgr-1', roles: ['sales_manager'], department: 'east', region: null, status: 'active' };
const authz = new RequestAuthz(bundle, manager);
const fields = ['id', 'name', 'phone', 'email', 'city', 'province', 'tier', 'segment', 'createdAt', 'ownerId'];
const projection = planProjection(authz, 'Customer', new Map(fields.map((f) => [f, new Set([undefined])])));

/** Rows as SQL returns them for the manager's own department (every flag true), policed as the server does. */
const rows: Row[] = Array.from({ length: ROWS }, (_, i) => {
  const row: Row = {};
  for (const [name] of projection.select) row[name] = name.startsWith('f') ? true : `${name} of row ${i}`;
  for (const [k, attr] of projection.attrs.entries()) {
    row[projection.attrColumns[k]!] = attr === 'id' ? `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` : attr === 'department' ? 'east' : `u-rep-${i % 3}`;
  }
  return row;
});
const read: ReadContext = {
  db: undefined as never,
  keyring: undefined as never,
  authz,
  onFault: () => {
    throw new Error('the re-check disagreed with rows built to be allowed');
  },
  observer: { enforce: (_subject, run) => run({ query: () => Promise.resolve(rows), decided: () => undefined }) },
};
const policed = await readRows(read, { projection, where: [], orderBy: [], shape: { key: 'execute-micro', values: {} } });

/** The real schema with `customers` answering from memory: fresh nodes per request, as the resolver builds them. */
async function schemaFromMemory(): Promise<GraphQLSchema> {
  const schema = await createSchema();
  resolveCellsDirectly(schema, 'Customer', customerPurposeFields);
  const customers = schema.getQueryType()!.getFields().customers!;
  customers.resolve = () => ({ edges: policed.map((row) => new Edge(toNode('Customer', row), row, () => 'cursor')), totalCount: ROWS });
  return schema;
}

const document = parse(scenarios.S1.query);
const operation = document.definitions[0] as OperationDefinitionNode;
const interpreted = await schemaFromMemory();
const executor = (await compiledExecutor(await schemaFromMemory()).load({ apollo: {} })).executor!;
const request = { document, operation, queryHash: 'S1', request: { variables: {} }, context: {} } as unknown as Parameters<typeof executor>[0];

const variants: Record<string, () => Promise<ExecutionResult> | ExecutionResult> = {
  'graphql-js': () => execute({ schema: interpreted, document, contextValue: {} }),
  compiled: () => executor(request),
};

const expected = JSON.stringify(await variants['graphql-js']!());
for (const [name, run] of Object.entries(variants)) {
  const got = JSON.stringify(await run());
  if (got !== expected) throw new Error(`${name} answered differently from graphql-js`);
}

const perRound = new Map<string, number[]>(Object.keys(variants).map((k) => [k, []]));
for (let round = 0; round < ROUNDS; round++) {
  // Interleaved, so that drift of the machine shows in both.
  for (const [name, run] of Object.entries(variants)) {
    const started = performance.now();
    for (let i = 0; i < RUNS; i++) JSON.stringify(await run());
    perRound.get(name)!.push(((performance.now() - started) / RUNS) * 1000);
  }
}
const medians = new Map<string, number>();
for (const [name, figures] of perRound) {
  // The first rounds include V8's warm-up: the median of the later ones is the figure.
  const settled = figures.slice(2).sort((a, b) => a - b);
  medians.set(name, settled[Math.floor(settled.length / 2)]!);
  console.log(`${name.padEnd(10)} µs per S1 execution + JSON: ${figures.map((us) => us.toFixed(1)).join(' / ')} (median after warm-up ${medians.get(name)!.toFixed(1)})`);
}
console.log(`graphql-js / compiled: ${(medians.get('graphql-js')! / medians.get('compiled')!).toFixed(2)}×`);
