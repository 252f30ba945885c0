import fc from 'fast-check';
import {
  execute,
  GraphQLInputObjectType,
  GraphQLInt,
  GraphQLList,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  parse,
  type FieldNode,
  type GraphQLArgumentConfig,
  type GraphQLInputType,
  type OperationDefinitionNode,
} from 'graphql';
import { describe, expect, it, vi } from 'vitest';
import { fastArgumentValues, graphqlValuesModule, installArgumentValuesFastPath, ORIGINAL, type ArgumentValues } from './argument-values.js';

const values = graphqlValuesModule();
/** graphql-js's own function, whether or not another test in this process installed the front already. */
const original: ArgumentValues = values.getArgumentValues[ORIGINAL] ?? values.getArgumentValues;
const fast = fastArgumentValues(original);

const Filter = new GraphQLInputObjectType({
  name: 'Filter',
  fields: { a: { type: GraphQLInt, defaultValue: 1 }, b: { type: GraphQLString } },
});

/** Argument types, each with a literal of it, the value that literal stands for, and a default to declare. */
const kinds: Array<{ type: GraphQLInputType; sdl: string; literal: string; value: unknown }> = [
  { type: GraphQLString, sdl: 'String', literal: '"s"', value: 's' },
  { type: GraphQLInt, sdl: 'Int', literal: '3', value: 3 },
  { type: new GraphQLNonNull(GraphQLString), sdl: 'String!', literal: '"t"', value: 't' },
  { type: new GraphQLList(GraphQLInt), sdl: '[Int]', literal: '[1, 2]', value: [1, 2] },
  { type: new GraphQLNonNull(new GraphQLList(new GraphQLNonNull(GraphQLInt))), sdl: '[Int!]!', literal: '[4]', value: [4] },
  { type: Filter, sdl: 'Filter', literal: '{ b: "x" }', value: { b: 'x' } },
];

const argument = fc.record({
  kind: fc.nat({ max: kinds.length - 1 }),
  withDefault: fc.boolean(),
  given: fc.constantFrom('none', 'literal', 'null', 'variable', 'missing variable'),
});

/** One field declaring the arguments, the field node of a query giving some of them, and the variables. */
function build(args: Array<{ kind: number; withDefault: boolean; given: string }>) {
  const config: Record<string, GraphQLArgumentConfig> = {};
  const given: string[] = [];
  const variableDefs: string[] = [];
  const variableValues: Record<string, unknown> = {};
  args.forEach((a, i) => {
    const kind = kinds[a.kind]!;
    config[`a${i}`] = { type: kind.type, ...(a.withDefault ? { defaultValue: kind.value } : {}) };
    if (a.given === 'literal') given.push(`a${i}: ${kind.literal}`);
    if (a.given === 'null') given.push(`a${i}: null`);
    if (a.given === 'variable' || a.given === 'missing variable') {
      given.push(`a${i}: $v${i}`);
      variableDefs.push(`$v${i}: ${kind.sdl}`);
      if (a.given === 'variable') variableValues[`v${i}`] = kind.value;
    }
  });
  const query = new GraphQLObjectType({ name: 'Query', fields: { f: { type: GraphQLString, args: config } } });
  const def = query.getFields().f!;
  const vars = variableDefs.length > 0 ? `(${variableDefs.join(', ')})` : '';
  const document = parse(`query Q${vars} { f${given.length > 0 ? `(${given.join(', ')})` : ''} }`);
  const node = (document.definitions[0] as OperationDefinitionNode).selectionSet.selections[0] as FieldNode;
  return { def, node, variableValues };
}

function outcome(fn: ArgumentValues, ...call: Parameters<ArgumentValues>) {
  try {
    const result = fn(...call);
    return { threw: false, prototype: Object.getPrototypeOf(result) as unknown, value: { ...result } };
  } catch (e) {
    return { threw: true, message: e instanceof Error ? e.message : String(e) };
  }
}

describe('the getArgumentValues front', () => {
  it('answers every field and argument node as graphql-js does: the same values, errors and kind of object', () => {
    fc.assert(
      fc.property(fc.array(argument, { maxLength: 5 }), (args) => {
        const { def, node, variableValues } = build(args);
        expect(outcome(fast, def, node, variableValues)).toEqual(outcome(original, def, node, variableValues));
      }),
      { numRuns: 500 },
    );
  });

  it('leaves graphql-js’s function out only where nothing is given and nothing is required or defaulted', () => {
    fc.assert(
      fc.property(fc.array(argument, { maxLength: 5 }), (args) => {
        const { def, node, variableValues } = build(args);
        const spy = vi.fn(original);
        const front = fastArgumentValues(spy);
        const constant = node.arguments!.length === 0 && args.every((a) => !a.withDefault && !(kinds[a.kind]!.type instanceof GraphQLNonNull));
        const first = outcome(front, def, node, variableValues);
        const second = outcome(front, def, node, variableValues);
        expect(spy.mock.calls.length).toBe(constant ? 0 : 2);
        if (constant) {
          // A new object each time, as graphql-js's: what one resolver adds to its arguments no other sees.
          const a = front(def, node, variableValues);
          expect(a).not.toBe(front(def, node, variableValues));
          expect(first).toEqual({ threw: false, prototype: Object.prototype, value: {} });
          expect(second).toEqual(first);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('is what graphql-js’s executor calls once installed, and installs once', async () => {
    const before = values.getArgumentValues;
    // graphql-js's function behind a spy, in the module's slot, whether or not this process installed the front already.
    const spy = vi.fn(original);
    values.getArgumentValues = spy;
    try {
      expect(installArgumentValuesFastPath()).toBe(true);
      const installed = values.getArgumentValues;
      expect(installed).not.toBe(spy);
      expect(installed[ORIGINAL]).toBe(spy);
      expect(installArgumentValuesFastPath()).toBe(true);
      expect(values.getArgumentValues).toBe(installed);

      const seen: Record<string, unknown> = {};
      const record = (name: string) => (_: unknown, args: Record<string, unknown>) => {
        seen[name] = args;
        return name;
      };
      const schema = new GraphQLSchema({
        query: new GraphQLObjectType({
          name: 'Query',
          fields: {
            bare: { type: GraphQLString, resolve: record('bare') },
            optional: { type: GraphQLString, args: { x: { type: GraphQLString } }, resolve: record('optional') },
            defaulted: { type: GraphQLString, args: { x: { type: GraphQLString, defaultValue: 'd' } }, resolve: record('defaulted') },
            given: { type: GraphQLString, args: { x: { type: GraphQLString } }, resolve: record('given') },
            required: { type: GraphQLString, args: { x: { type: new GraphQLNonNull(GraphQLString) } }, resolve: record('required') },
          },
        }),
      });
      const result = await execute({ schema, document: parse('{ bare optional defaulted given(x: "g") required }') });
      expect(result.data).toEqual({ bare: 'bare', optional: 'optional', defaulted: 'defaulted', given: 'given', required: null });
      // The missing required argument is still graphql-js's error, word for word.
      expect(result.errors?.map((e) => e.message)).toEqual(['Argument "x" of required type "String!" was not provided.']);
      expect(seen).toEqual({ bare: {}, optional: {}, defaulted: { x: 'd' }, given: { x: 'g' } });
      // The executor went through the front: graphql-js's function ran for the three fields that need it, not for the two that do not.
      expect(spy.mock.calls.map(([def]) => def.name)).toEqual(['defaulted', 'given', 'required']);
    } finally {
      values.getArgumentValues = before;
    }
  });
});
