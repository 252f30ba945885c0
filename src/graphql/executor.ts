import type { ApolloServerOptionsWithGateway } from '@apollo/server';
import {
  BREAK,
  execute,
  getVariableValues,
  isObjectType,
  visit,
  type DocumentNode,
  type ExecutionResult,
  type GraphQLFieldResolver,
  type GraphQLSchema,
} from 'graphql';
import { compileQuery, isCompiledQuery, type CompiledQuery } from 'graphql-jit';
import { Lru } from '../authz/statements.js';

type Gateway = ApolloServerOptionsWithGateway<Record<string, unknown>>['gateway'];
type Executor = NonNullable<Awaited<ReturnType<Gateway['load']>>['executor']>;

/** Compiled operations kept per process (by query hash and operation name); the rest are compiled again when they come back. */
export const COMPILED_OPERATIONS = 500;

/**
 * graphql-jit writes literal argument values into the code it compiles as
 * JSON, then turns strings that start with its own fixed markers back into
 * `new Date(…)`, `NaN` or `±Infinity` expressions, the rest of the string
 * included. A literal that starts with such a marker is therefore code (checked:
 * `echo(s: "__MAGIC_DATE__…0),x:(globalThis.PWNED=1")` runs the assignment).
 * Documents that carry one anywhere in a string or enum value (escape sequences
 * decoded) are never compiled: graphql-js executes them.
 */
const JIT_MARKER = '__MAGIC_';

export function carriesJitMarker(document: DocumentNode): boolean {
  let found = false;
  visit(document, {
    StringValue(node) {
      if (node.value.includes(JIT_MARKER)) {
        found = true;
        return BREAK;
      }
      return undefined;
    },
    EnumValue(node) {
      if (node.value.includes(JIT_MARKER)) {
        found = true;
        return BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/**
 * graphql-js's default resolver, bound to one field: a property of the source
 * object, or the result of calling it when it is a function (custos's denied
 * cells throw from such a function, connection edges build their cursor in
 * one). graphql-jit reads a field without a resolver as a plain property and
 * would serialize the function instead; with this resolver on every such field
 * both executors give the same answers.
 */
function propertyResolver(name: string): GraphQLFieldResolver<unknown, unknown> {
  return (source, args, context, info) => {
    if (source === null || (typeof source !== 'object' && typeof source !== 'function')) return undefined;
    const value = (source as Record<string, unknown>)[name];
    return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).call(source, args, context, info) : value;
  };
}

/** Gives every field of the schema's own object types that has no resolver graphql-js's default behaviour (above). */
export function resolvePropertiesLikeGraphqlJs(schema: GraphQLSchema): void {
  for (const type of Object.values(schema.getTypeMap())) {
    if (!isObjectType(type) || type.name.startsWith('__')) continue;
    for (const field of Object.values(type.getFields())) field.resolve ??= propertyResolver(field.name);
  }
}

/**
 * Runs operations compiled by graphql-jit instead of graphql-js's interpreter:
 * graphql-js builds an argument map, a resolve-info object and a result entry
 * for every field of every row (a 50-customer page of ten fields is 500 of
 * them); the compiled operation does the same work in straight-line code,
 * ~4.5× faster for S1 (`npx tsx bench/execute-micro.ts`).
 *
 * Apollo takes another executor only through its gateway interface: parsing,
 * validation (graphql-armor's limits included), plugins and error formatting
 * stay Apollo's. Variables are checked by graphql-js first so that a bad
 * variable gets exactly graphql-js's error (Apollo answers it with 400 and
 * BAD_USER_INPUT, and the message is scrubbed of the value); the compiled
 * operation then coerces them itself. A document graphql-jit cannot be trusted
 * to compile (`carriesJitMarker`) runs on graphql-js.
 */
export function compiledExecutor(schema: GraphQLSchema, opts: { maxOperations?: number } = {}): Gateway {
  resolvePropertiesLikeGraphqlJs(schema);
  const compiled = new Lru<CompiledQuery>(opts.maxOperations ?? COMPILED_OPERATIONS);

  const executor: Executor = async (request) => {
    const { document, operation, queryHash } = request;
    const operationName = operation.name?.value;
    const key = `${queryHash}\u0000${operationName ?? ''}`;
    let query = compiled.get(key);
    if (!query) {
      if (carriesJitMarker(document)) {
        return (await execute({ schema, document, operationName, contextValue: request.context, variableValues: request.request.variables }));
      }
      const made = compileQuery(schema, document, operationName);
      if (!isCompiledQuery(made)) return made as ExecutionResult;
      query = made;
      compiled.set(key, query);
    }
    const inputs = request.request.variables ?? {};
    if (operation.variableDefinitions?.length) {
      const coerced = getVariableValues(schema, operation.variableDefinitions, inputs, { maxErrors: 50 });
      if (coerced.errors) return { errors: coerced.errors };
    }
    return (await query.query(undefined, request.context, inputs)) as ExecutionResult;
  };

  return {
    load: () => Promise.resolve({ executor }),
    onSchemaLoadOrUpdate: (callback) => {
      callback({ apiSchema: schema, coreSupergraphSdl: '' });
      return () => undefined;
    },
    stop: () => Promise.resolve(),
  };
}
