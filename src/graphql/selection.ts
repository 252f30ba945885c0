import {
  getArgumentValues,
  getDirectiveValues,
  GraphQLIncludeDirective,
  GraphQLSkipDirective,
  Kind,
  type FieldNode,
  type GraphQLObjectType,
  type GraphQLResolveInfo,
  type SelectionSetNode,
} from 'graphql';

/** One requested field of an object type, with its (variable-resolved) arguments; aliases collapse by field name. */
export interface RequestedField {
  name: string;
  /** Every distinct argument set the field is asked with (aliases may ask `phone(purpose:)` twice). */
  args: Array<Record<string, unknown>>;
  /** Sub-selections across all occurrences, for nested types. */
  nodes: FieldNode[];
}

export type Selection = Map<string, RequestedField>;

function included(node: { directives?: readonly unknown[] | undefined }, info: GraphQLResolveInfo): boolean {
  const n = node as FieldNode;
  const skip = getDirectiveValues(GraphQLSkipDirective, n, info.variableValues);
  if (skip?.if === true) return false;
  const include = getDirectiveValues(GraphQLIncludeDirective, n, info.variableValues);
  return include?.if !== false;
}

function walk(set: SelectionSetNode, type: GraphQLObjectType, info: GraphQLResolveInfo, out: Selection): void {
  for (const sel of set.selections) {
    if (!included(sel, info)) continue;
    switch (sel.kind) {
      case Kind.FIELD: {
        const name = sel.name.value;
        if (name.startsWith('__')) break;
        const def = type.getFields()[name];
        if (!def) break;
        const args = getArgumentValues(def, sel, info.variableValues);
        const entry = out.get(name) ?? { name, args: [], nodes: [] };
        if (!entry.args.some((a) => JSON.stringify(a) === JSON.stringify(args))) entry.args.push(args);
        entry.nodes.push(sel);
        out.set(name, entry);
        break;
      }
      case Kind.INLINE_FRAGMENT:
        if (!sel.typeCondition || sel.typeCondition.name.value === type.name) walk(sel.selectionSet, type, info, out);
        break;
      case Kind.FRAGMENT_SPREAD: {
        const fragment = info.fragments[sel.name.value];
        if (fragment && fragment.typeCondition.name.value === type.name) walk(fragment.selectionSet, type, info, out);
        break;
      }
    }
  }
}

/** The fields requested of `type` under the given field nodes (fragments, aliases, @skip/@include resolved). */
export function selectionOf(nodes: readonly FieldNode[], type: GraphQLObjectType, info: GraphQLResolveInfo): Selection {
  const out: Selection = new Map();
  for (const node of nodes) if (node.selectionSet) walk(node.selectionSet, type, info, out);
  return out;
}
