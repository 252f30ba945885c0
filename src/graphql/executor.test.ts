import { createHash } from 'node:crypto';
import fc from 'fast-check';
import {
  buildSchema,
  execute,
  GraphQLError,
  isObjectType,
  Kind,
  parse,
  validate,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from 'graphql';
import * as jit from 'graphql-jit';
import { describe, expect, it, vi } from 'vitest';
import { compiledExecutor } from './executor.js';

vi.mock('graphql-jit', async (importOriginal) => {
  const original = await importOriginal<typeof jit>();
  return { ...original, compileQuery: vi.fn(original.compileQuery) };
});

/**
 * A schema shaped like custos's: nullable cells that may be denied (a
 * function-valued property that throws a coded GraphQLError, as `toNode`
 * builds them), a purpose argument with an enum, a method-built field (like
 * an edge's cursor), a non-null field that can fail (errors bubble up), lists
 * and nesting.
 */
const sdl = `
  enum Purpose { CONTACT BILLING }
  type Query {
    people(first: Int = 3): [Person!]!
    person(id: ID!): Person
    echo(s: String, p: Purpose): String
  }
  type Person {
    id: ID!
    name: String
    city: String
    secret(purpose: Purpose): String
    cursor: String!
    friends(first: Int = 2): [Person]
  }
`;

interface Seed {
  name: 'raw' | 'denied' | 'null';
  cursorFails: boolean;
}

class Person {
  constructor(
    readonly id: string,
    private readonly seed: Seed,
    readonly all: Person[],
    readonly city: string | (() => never),
  ) {}

  get name(): string | null | (() => never) {
    if (this.seed.name === 'denied') return deny('name');
    return this.seed.name === 'raw' ? `name of ${this.id}` : null;
  }

  cursor(): string {
    if (this.seed.cursorFails) throw new Error('cursor failed');
    return `c-${this.id}`;
  }
}

function deny(field: string): () => never {
  return () => {
    throw new GraphQLError(`not permitted to read Person.${field} of this record`, { extensions: { code: 'FORBIDDEN' } });
  };
}

function people(seeds: Seed[]): Person[] {
  const all: Person[] = [];
  seeds.forEach((seed, i) => all.push(new Person(`p${i}`, seed, all, i % 3 === 2 ? deny('city') : `city ${i}`)));
  return all;
}

function makeSchema(): GraphQLSchema {
  const schema = buildSchema(sdl);
  const query = schema.getQueryType()!.getFields();
  query.people!.resolve = (_root, args: { first: number }, ctx: { people: Person[] }) => ctx.people.slice(0, Math.max(0, args.first));
  query.person!.resolve = (_root, args: { id: string }, ctx: { people: Person[] }) => ctx.people.find((p) => p.id === args.id) ?? null;
  query.echo!.resolve = (_root, args: { s?: string; p?: string }) => `${args.s ?? ''}|${args.p ?? ''}`;
  const person = schema.getType('Person');
  if (!isObjectType(person)) throw new Error('no Person');
  const fields = person.getFields();
  fields.secret!.resolve = (p: Person, args: { purpose?: string | null }) => {
    if (args.purpose !== 'CONTACT') throw new GraphQLError('secret needs CONTACT', { extensions: { code: 'FORBIDDEN' } });
    return `secret of ${p.id}`;
  };
  fields.friends!.resolve = (p: Person, args: { first: number }) => p.all.filter((f) => f !== p).slice(0, Math.max(0, args.first));
  return schema;
}

const reference = makeSchema();
const executor = (await compiledExecutor(makeSchema()).load({ apollo: {} })).executor!;

type Request = Parameters<typeof executor>[0];

function requestFor(query: string, context: unknown, variables?: Record<string, unknown>): Request {
  const document = parse(query);
  const operation = document.definitions.find((d): d is OperationDefinitionNode => d.kind === Kind.OPERATION_DEFINITION)!;
  const queryHash = createHash('sha256').update(query).digest('hex');
  return { document, operation, queryHash, request: { variables }, context } as unknown as Request;
}

/** An error as a client sees it (locations aside: see below). */
function errorText(e: GraphQLError): string {
  return JSON.stringify({ message: e.message, path: e.path, extensions: e.extensions ?? {} });
}

/** Whether the response carries an object at `path`, or a null on the way (or there) cut the path short. */
function carried(data: unknown, path: ReadonlyArray<string | number>): boolean {
  let at = data;
  for (const key of path) {
    if (at === null || at === undefined) return false;
    at = (at as Record<string | number, unknown>)[key];
  }
  return at !== null && at !== undefined;
}

/**
 * The compiled result against graphql-js's: the same data, and the same
 * errors (message, path, code) for everything the response carries. Where a
 * non-null field fails and its parent becomes null, the two may report other
 * errors under that parent: graphql-js stops resolving the parent's fields at
 * the first failure, in its order of fields, graphql-jit resolves them all in
 * its own. Those describe nothing the response carries. Locations are left
 * out: where a field is selected twice and a directive skips one, graphql-jit
 * also points at the skipped one (a place in the caller's own document).
 */
function expectSameAnswer(got: ExecutionResult, expected: ExecutionResult): void {
  expect(got.data).toEqual(expected.data);
  const gotErrors = new Set((got.errors ?? []).map(errorText));
  const expectedErrors = new Set((expected.errors ?? []).map(errorText));
  const only = (errors: ReadonlyArray<GraphQLError> | undefined, other: Set<string>) => (errors ?? []).filter((e) => !other.has(errorText(e)));
  for (const e of [...only(got.errors, expectedErrors), ...only(expected.errors, gotErrors)]) {
    expect(e.path, `error ${errorText(e)} reported by one executor only`).toBeDefined();
    expect(carried(got.data, e.path!.slice(0, -1)), `error ${errorText(e)} reported by one executor only, under a path the response carries`).toBe(false);
  }
  // A response that lost a value has an error to say why.
  if (expected.errors?.length) expect(got.errors?.length).toBeGreaterThan(0);
}

async function both(query: string, context: unknown, variables?: Record<string, unknown>) {
  const expected = (await execute({ schema: reference, document: parse(query), contextValue: context, variableValues: variables }));
  const got = await executor(requestFor(query, context, variables));
  return { expected, got };
}

// Random selections over Person: fields with and without aliases and arguments, fragments, directives, nesting.
const leaf = fc.constantFrom('id', 'name', 'city', 'cursor', 'secret', 'secret(purpose: CONTACT)', 'secret(purpose: BILLING)', '__typename');
function selection(depth: number): fc.Arbitrary<string> {
  const parts: Array<fc.WeightedArbitrary<string>> = [
    { weight: 4, arbitrary: leaf },
    { weight: 1, arbitrary: fc.tuple(fc.nat(99), leaf).map(([n, f]) => `a${n}_${n}: ${f.replace('__typename', 'id')}`) },
    { weight: 1, arbitrary: fc.tuple(leaf, fc.boolean()).map(([f, on]) => `${f} @include(if: ${on})`) },
    { weight: 1, arbitrary: leaf.map((f) => `${f} @skip(if: $skip)`) },
    { weight: 1, arbitrary: fc.constant('...P') },
  ];
  if (depth > 1) {
    parts.push(
      { weight: 1, arbitrary: fc.tuple(fc.integer({ min: -1, max: 4 }), selection(depth - 1)).map(([n, s]) => `friends(first: ${n}) { ${s} }`) },
      { weight: 1, arbitrary: selection(depth - 1).map((s) => `... on Person { ${s} }`) },
    );
  }
  return fc.array(fc.oneof(...parts), { minLength: 1, maxLength: 6 }).map((picked) => picked.join(' '));
}
const seeds = fc.array(fc.record({ name: fc.constantFrom<Seed['name']>('raw', 'denied', 'null'), cursorFails: fc.boolean() }), { minLength: 0, maxLength: 6 });

describe('compiled executor', () => {
  it('answers every document exactly as graphql-js does: data, nulls and errors with their paths and codes', async () => {
    await fc.assert(
      fc.asyncProperty(seeds, selection(3), fc.integer({ min: -1, max: 7 }), fc.boolean(), fc.boolean(), async (s, sel, first, one, skip) => {
        const root = one ? `person(id: "p1") { ${sel} }` : `people(first: ${first}) { ${sel} }`;
        const query = `query Q($skip: Boolean = false) { ${root} } fragment P on Person { id city }`;
        fc.pre(validate(reference, parse(query)).length === 0);
        const { expected, got } = await both(query, { people: people(s) }, { skip });
        expectSameAnswer(got, expected);
      }),
      { numRuns: 300 },
    );
  });

  it('reuses a compiled operation without carrying one request’s data or variables into the next', async () => {
    const query = 'query Q($id: ID!) { person(id: $id) { id name city } people { id name } }';
    const a = await both(query, { people: people([{ name: 'raw', cursorFails: false }, { name: 'raw', cursorFails: false }]) }, { id: 'p0' });
    const b = await both(query, { people: people([{ name: 'denied', cursorFails: false }, { name: 'null', cursorFails: false }]) }, { id: 'p1' });
    expectSameAnswer(a.got, a.expected);
    expectSameAnswer(b.got, b.expected);
    expect(JSON.stringify(b.got)).not.toContain('name of p');
  });

  it('refuses bad variables with graphql-js’s own errors (Apollo answers them with 400 and BAD_USER_INPUT)', async () => {
    const query = 'query Q($id: ID!, $p: Purpose) { person(id: $id) { id } echo(p: $p) }';
    for (const variables of [{}, { id: null }, { id: 'p0', p: 'NOT_A_PURPOSE' }, { id: { nested: true } }]) {
      const { expected, got } = await both(query, { people: people([]) }, variables);
      expect(got.data).toBeUndefined();
      expect(got.errors?.map(errorText)).toEqual(expected.errors?.map(errorText));
      expect(got.errors?.[0]?.nodes?.[0]?.kind).toBe('VariableDefinition');
    }
  });

  it('never compiles a literal that graphql-jit would turn into code', async () => {
    const probe = globalThis as { custosJitProbe?: number };
    const payloads = [
      '__MAGIC_DATE__33a9e76d_02e0_4128_8e92_3530ad3da74d0),x:(globalThis.custosJitProbe=1',
      // The same with its underscores escaped: the decoded value is what graphql-jit sees.
      '\\u005F\\u005FMAGIC_DATE__33a9e76d_02e0_4128_8e92_3530ad3da74d0),x:(globalThis.custosJitProbe=2',
    ];
    for (const payload of payloads) {
      const { expected, got } = await both(`{ echo(s: "${payload}") }`, { people: [] });
      expect(got).toEqual(expected);
      expect(got.data?.echo).toContain('MAGIC_DATE');
      expect(probe.custosJitProbe).toBeUndefined();
    }
    // Block strings too.
    const { expected, got } = await both(`{ echo(s: """${payloads[0]!}""") }`, { people: [] });
    expect(got).toEqual(expected);
    expect(probe.custosJitProbe).toBeUndefined();
  });

  it('compiles an operation once and keeps a bounded number of them', async () => {
    const compile = vi.mocked(jit.compileQuery);
    const small = (await compiledExecutor(makeSchema(), { maxOperations: 1 }).load({ apollo: {} })).executor!;
    const context = { people: people([{ name: 'raw', cursorFails: false }]) };
    const run = (q: string) => small(requestFor(q, context));
    compile.mockClear();
    await run('{ people { id } }');
    await run('{ people { id } }');
    expect(compile).toHaveBeenCalledTimes(1);
    await run('{ people { name } }');
    await run('{ people { id } }');
    expect(compile).toHaveBeenCalledTimes(3);
  });
});
