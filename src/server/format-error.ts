import type { GraphQLFormattedError } from 'graphql';
import { knownCodes } from '../errors.js';

/** Apollo's own request-level codes: safe, they describe the request, not the data. */
const apolloCodes = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'OPERATION_RESOLUTION_FAILURE',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'DATA_UNAVAILABLE',
]);

/**
 * The one place unknown errors are masked: a known code keeps its message,
 * anything else (driver errors with SQL, constraint details, bugs) becomes a
 * bare INTERNAL_SERVER_ERROR. Stack traces never leave the process.
 */
export function formatError(formatted: GraphQLFormattedError, _error: unknown): GraphQLFormattedError {
  const code = typeof formatted.extensions?.code === 'string' ? formatted.extensions.code : undefined;
  if (code && (knownCodes.has(code) || apolloCodes.has(code))) {
    const { stacktrace: _s, exception: _e, http: _h, ...extensions } = formatted.extensions ?? {};
    return { message: formatted.message, ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}), extensions };
  }
  return {
    message: 'internal error',
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions: { code: 'INTERNAL_SERVER_ERROR' },
  };
}
