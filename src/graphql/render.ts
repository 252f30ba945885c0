import { cellKey } from '../authz/projection.js';
import { cellAt, type Cell, type RenderedRow } from '../authz/reader.js';
import { ForbiddenError } from '../errors.js';
import { GraphQLError, isObjectType, type GraphQLSchema } from 'graphql';

export class DataUnavailableError extends GraphQLError {
  readonly code = 'DATA_UNAVAILABLE' as const;
  constructor() {
    super('the value is not available (its key was destroyed or it failed integrity checks)', {
      extensions: { code: 'DATA_UNAVAILABLE' },
    });
  }
}

/** A cell as GraphQL sees it: the value, or an error at this field's path (graphql-js nulls it). */
export function cellValue(subject: string, field: string, cell: Cell | undefined): unknown {
  if (!cell) return null;
  switch (cell.state) {
    case 'raw':
    case 'masked':
    case 'revealed':
      return cell.value ?? null;
    case 'denied':
      throw new ForbiddenError(`not permitted to read ${subject}.${field} of this record`, { subject, fields: [field] });
    case 'unavailable':
      throw new DataUnavailableError();
  }
}

/**
 * Turns a policed row into the object graphql-js resolves with its default
 * resolver: plain fields become properties (getters that throw for denied
 * cells), purpose-taking fields are read through `cellOf` by their resolvers.
 */
export function toNode(subject: string, row: RenderedRow): Record<string, unknown> {
  const node: Record<string, unknown> = { id: row.id, __row: row };
  const plans = row.projection.cells;
  for (let i = 0; i < plans.length; i++) {
    const plan = plans[i]!;
    const { field } = plan;
    if (plan.purpose !== undefined || field === 'id') continue;
    const cell = row.cells[i];
    if (!cell) continue;
    if (cell.state === 'denied' || cell.state === 'unavailable') {
      node[field] = () => cellValue(subject, field, cell);
    } else {
      node[field] = cell.value ?? null;
    }
  }
  return node;
}

/**
 * A connection edge. graphql-js calls a function-valued field as a method,
 * so the (encrypted) cursor is built from the edge's key (a policed row, an
 * audit record's seq) only when selected, with no closure per row.
 */
export class Edge<K = RenderedRow, N = Record<string, unknown>> {
  constructor(
    readonly node: N,
    private readonly key: K,
    private readonly cursorOf: (key: K) => string,
  ) {}

  cursor(): string {
    return this.cursorOf(this.key);
  }
}

/** The rendered value of a purpose-taking field (e.g. `phone(purpose: CONTACT)`). */
export function cellOf(subject: string, node: { __row: RenderedRow }, field: string, purpose: string | undefined): unknown {
  return cellValue(subject, field, cellAt(node.__row, cellKey(field, purpose)));
}

/**
 * Resolves the purpose-taking fields of `type` with plain functions over the
 * rendered cells. The declarations (arguments, descriptions) stay in the
 * type-graphql resolver class, which builds the schema; at run time its
 * per-call parameter machinery would cost more than reading the cell, once
 * per field of every row. graphql-js has already coerced `purpose` to the
 * enum's internal value, exactly what the class method received.
 */
export function resolveCellsDirectly(schema: GraphQLSchema, type: string, fields: readonly string[]): void {
  const object = schema.getType(type);
  if (!isObjectType(object)) throw new Error(`schema has no object type ${type}`);
  const defs = object.getFields();
  for (const field of fields) {
    const def = defs[field];
    if (!def) throw new Error(`schema has no field ${type}.${field}`);
    def.resolve = (node: { __row: RenderedRow }, args: { purpose?: string | null }) => cellOf(type, node, field, args.purpose ?? undefined);
  }
}
