import { cellKey } from '../authz/projection.js';
import type { Cell, RenderedRow } from '../authz/reader.js';
import { ForbiddenError } from '../errors.js';
import { GraphQLError } from 'graphql';

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
  for (const [key, cell] of row.cells) {
    const [field, purpose] = key.split('|') as [string, string];
    if (purpose !== '' || field === 'id') continue;
    if (cell.state === 'denied' || cell.state === 'unavailable') {
      node[field] = () => cellValue(subject, field, cell);
    } else {
      node[field] = cell.value ?? null;
    }
  }
  return node;
}

/** The rendered value of a purpose-taking field (e.g. `phone(purpose: CONTACT)`). */
export function cellOf(subject: string, node: { __row: RenderedRow }, field: string, purpose: string | undefined): unknown {
  return cellValue(subject, field, node.__row.cells.get(cellKey(field, purpose)));
}
