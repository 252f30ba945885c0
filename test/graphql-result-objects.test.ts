import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import fc from 'fast-check';
import { execute, GraphQLObjectType, GraphQLSchema, GraphQLString, parse, type ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';

/**
 * patches/graphql+16.15.0.patch: graphql-js builds each selection set's result
 * as `new ResultObject()` (a null-prototype chain, fast properties) instead of
 * `Object.create(null)` (dictionary mode). These tests hold the patch to what
 * the original promised: own properties only, whatever the response names.
 */

const Item = new GraphQLObjectType({
  name: 'Item',
  fields: { name: { type: GraphQLString }, later: { type: GraphQLString, resolve: (src: { name: string }) => Promise.resolve(`later ${src.name}`) } },
});
const schema = new GraphQLSchema({
  query: new GraphQLObjectType({
    name: 'Query',
    fields: { item: { type: Item, resolve: () => ({ name: 'a' }) } },
  }),
  mutation: new GraphQLObjectType({
    name: 'Mutation',
    fields: { touch: { type: Item, resolve: () => ({ name: 'm' }) } },
  }),
});

/** Names a response can take that an object with Object.prototype would treat specially. */
const inherited = ['__proto__', 'constructor', 'toString', 'valueOf', 'hasOwnProperty', '__defineGetter__', 'isPrototypeOf'];
const responseName = fc.oneof(fc.constantFrom(...inherited), fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/));

/** The result objects of a response, the response itself excluded (graphql-js builds that one as a literal). */
function selectionResults(result: ExecutionResult): object[] {
  const out: object[] = [];
  const walk = (v: unknown) => {
    if (v === null || typeof v !== 'object') return;
    out.push(v);
    for (const child of Object.values(v)) walk(child);
  };
  walk(result.data);
  return out;
}

describe('graphql-js result objects (patched)', () => {
  it('keep every response name as an own property, with nothing inherited showing through', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uniqueArray(responseName, { minLength: 1, maxLength: 6 }), fc.constantFrom('sync', 'async', 'serial'), async (names, mode) => {
        const field = mode === 'async' ? 'later' : 'name';
        const selection = names.map((n) => `${n}: ${field}`).join(' ');
        const document = parse(mode === 'serial' ? `mutation { touch { ${selection} } }` : `{ item { ${selection} } }`);
        const result = await execute({ schema, document });
        expect(result.errors).toBeUndefined();
        const top = mode === 'serial' ? 'touch' : 'item';
        const value = mode === 'async' ? 'later a' : mode === 'serial' ? 'm' : 'a';
        const item = (result.data as Record<string, Record<string, unknown>>)[top]!;
        expect(Object.keys(item)).toEqual(names);
        for (const n of names) expect(Object.getOwnPropertyDescriptor(item, n)?.value).toBe(value);
        expect(JSON.parse(JSON.stringify(result.data))).toEqual({ [top]: Object.fromEntries(names.map((n) => [n, value])) });
        for (const o of selectionResults(result)) {
          const proto = Object.getPrototypeOf(o) as object | null;
          expect(proto === null || Object.getPrototypeOf(proto) === null).toBe(true);
          for (const n of inherited) if (!names.includes(n) || o !== item) expect(n in o).toBe(false);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('are fast-mode objects, for reads, writes and resolved promises alike', () => {
    // V8's own verdict, in a child process allowed to ask for it.
    const graphqlPath = createRequire(import.meta.url).resolve('graphql');
    const script = `
      const { buildSchema, execute, parse } = require(${JSON.stringify(graphqlPath)});
      const schema = buildSchema('type Item { name: String later: String } type Query { item: Item } type Mutation { touch: Item }');
      const rootValue = { item: () => ({ name: 'a', later: () => Promise.resolve('b') }), touch: () => ({ name: 'm' }) };
      (async () => {
        const read = execute({ schema, document: parse('{ item { name } }'), rootValue });
        const later = await execute({ schema, document: parse('{ item { name later } }'), rootValue });
        const write = await execute({ schema, document: parse('mutation { touch { name } }'), rootValue });
        const objects = [read.data, read.data.item, later.data, later.data.item, write.data, write.data.touch];
        console.log(JSON.stringify(objects.map((o) => %HasFastProperties(o))));
      })();`;
    const child = spawnSync(process.execPath, ['--allow-natives-syntax', '-e', script], { encoding: 'utf8' });
    expect(child.stderr).toBe('');
    expect(JSON.parse(child.stdout)).toEqual([true, true, true, true, true, true]);
  });
});
