import { isNonNullType, type GraphQLDirective, type GraphQLField } from 'graphql';
import { createRequire } from 'node:module';

export type ArgumentValues = (
  def: GraphQLField<unknown, unknown> | GraphQLDirective,
  node: { readonly arguments?: readonly unknown[] | undefined },
  variableValues?: Readonly<Record<string, unknown>> | null,
) => Record<string, unknown>;

/** On the installed front: graphql-js's own function, which it calls for everything but the constant case. */
export const ORIGINAL = Symbol('custos.argumentValues.original');

export interface ValuesModule {
  getArgumentValues: ArgumentValues & { [ORIGINAL]?: ArgumentValues };
}

const require = createRequire(import.meta.url);

/** graphql-js's `graphql/execution/values` module, the one its executor calls into (CommonJS, one instance per process). */
export function graphqlValuesModule(): ValuesModule {
  return require('graphql/execution/values') as ValuesModule;
}

/**
 * graphql-js 16 works out the arguments of every field it executes with
 * `getArgumentValues`, which builds three objects even for a field that
 * declares no argument or is given none: two in V8's dictionary mode
 * (`Object.create(null)`: the values, and a map of the argument nodes) and the
 * plain copy of the values it returns. A list executes it once per field per
 * row: S2 (20 customers × 10 orders) ~1,300 times per request. Under S2
 * load that was 22–25 % of every byte the server allocated, in full and off
 * alike (a sampling heap profile, bench/HISTORY.md "Measured in session 14").
 *
 * The common case has a constant answer. A field given no argument, whose
 * declared arguments are all optional and have no default, gets a new empty
 * object: what graphql-js returns, without the two dictionaries it builds to
 * get there. Every other call goes to graphql-js's own function.
 */
export function fastArgumentValues(original: ArgumentValues): ArgumentValues {
  return (def, node, variableValues) => {
    if (node.arguments === undefined || node.arguments.length === 0) {
      let constant = true;
      for (const arg of def.args) {
        if (arg.defaultValue !== undefined || isNonNullType(arg.type)) {
          constant = false;
          break;
        }
      }
      // Fresh each time, as graphql-js's is: a resolver may add to its arguments without touching another's.
      if (constant) return {};
    }
    return original(def, node, variableValues);
  };
}

/**
 * Puts the front in place of graphql-js's `getArgumentValues`, once per
 * process. graphql-js's executor reads that function from its module's
 * exports at every call, so replacing the export is enough. Only for the major
 * version whose code this was checked against (16): returns false, and changes
 * nothing, for any other.
 */
export function installArgumentValuesFastPath(): boolean {
  const { version } = require('graphql/package.json') as { version: string };
  if (!version.startsWith('16.')) return false;
  const values = graphqlValuesModule();
  if (values.getArgumentValues[ORIGINAL]) return true;
  const original = values.getArgumentValues;
  const fast = fastArgumentValues(original) as ValuesModule['getArgumentValues'];
  fast[ORIGINAL] = original;
  values.getArgumentValues = fast;
  return true;
}
