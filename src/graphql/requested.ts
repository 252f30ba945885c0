import type { GraphQLObjectType, GraphQLResolveInfo } from 'graphql';
import type { Requested } from '../authz/projection.js';
import { selectionOf, type RequestedField } from './selection.js';
import type { FieldNode } from 'graphql';

function objectType(info: GraphQLResolveInfo, name: string): GraphQLObjectType {
  return info.schema.getType(name) as GraphQLObjectType;
}

function toRequested(fields: Map<string, RequestedField>): Requested {
  const out: Requested = new Map();
  for (const [name, f] of fields) {
    const purposes = new Set<string | undefined>();
    for (const args of f.args) purposes.add(typeof args.purpose === 'string' ? args.purpose : undefined);
    out.set(name, purposes);
  }
  return out;
}

/**
 * What the caller asks of a connection field: of the node type under it (edges → node), and whether its
 * `totalCount`; fragments, aliases and @skip/@include resolved.
 */
export function connectionSelection(info: GraphQLResolveInfo, connection: string, node: string): { requested: Requested; totalCount: boolean } {
  const top = selectionOf(info.fieldNodes, objectType(info, connection), info);
  const edges = top.get('edges')?.nodes ?? [];
  const edgeSel = selectionOf(edges, objectType(info, `${node}Edge`), info);
  const nodeNodes: FieldNode[] = edgeSel.get('node')?.nodes ?? [];
  return { requested: toRequested(selectionOf(nodeNodes, objectType(info, node), info)), totalCount: top.has('totalCount') };
}

/** What the caller asks of the node type under a connection field (edges → node), fragments and aliases resolved. */
export function requestedInConnection(info: GraphQLResolveInfo, connection: string, node: string): Requested {
  return connectionSelection(info, connection, node).requested;
}

/** What the caller asks of an object returned directly by this field. */
export function requestedOf(info: GraphQLResolveInfo, type: string): Requested {
  return toRequested(selectionOf(info.fieldNodes, objectType(info, type), info));
}
