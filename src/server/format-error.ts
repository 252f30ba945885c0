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

/** Connection-level failures (not query errors): refused, reset, timed out, server shutting down. */
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'CONNECT_TIMEOUT',
  'CONNECTION_CLOSED',
  'CONNECTION_DESTROYED',
  'CONNECTION_ENDED',
  '57P01', // admin_shutdown
  '57P03', // cannot_connect_now
]);

/** Follows originalError / cause links (Apollo and drizzle both wrap) looking for a connection failure. */
export function databaseUnavailable(error: unknown): boolean {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current && typeof current === 'object'; depth++) {
    const e = current as { code?: unknown; errno?: unknown; originalError?: unknown; cause?: unknown };
    if (typeof e.code === 'string' && (unavailableCodes.has(e.code) || e.code.startsWith('08'))) return true;
    current = e.originalError ?? e.cause;
  }
  return false;
}

/**
 * graphql-js echoes input values in coercion and validation messages
 * (`got invalid value { phone: "…" }`, `cannot represent …: "…"`,
 * `found "…"`): a caller's argument may be a personal value, and responses
 * end up in client logs and proxies. The value is withheld, the reason kept.
 */
const graphqlToken = /^\$?[_A-Za-z][_0-9A-Za-z]*(?:\.[_0-9A-Za-z]+)*$|^\[*[_A-Za-z][_0-9A-Za-z]*(?:!?\])*!?$/;

export function withholdValues(message: string): string {
  // The lexer quotes a token's value as it is, escaping nothing: only the message's end ends it.
  const syntax = message.startsWith('Syntax Error:');
  let out = message;
  const invalid = /^(Variable "\$[_A-Za-z0-9]+" got invalid value) [\s\S]*?(?:( at "[^"]*")?; ([\s\S]*))$/.exec(out);
  if (invalid) out = `${invalid[1]}${invalid[2] ?? ''}; ${invalid[3] ?? ''}`;
  return (
    out
      .replace(/(cannot represent [^:]*?value): [\s\S]*$/, '$1.')
      .replace(/, found [\s\S]*$/, (found) => `, found another value${syntax ? '.' : found.slice(endOfFound(found))}`)
      .replace(/Value "(?:[^"\\]|\\.)*" does not exist/g, 'The value does not exist')
      // Whatever else is quoted must be a GraphQL name, type or path; anything else was typed by the caller.
      .replace(/"((?:[^"\\]|\\.)*)"/g, (quoted, inner: string) => (graphqlToken.test(inner) ? quoted : '"…"'))
  );
}

/**
 * Where the value after `, found ` ends: at a `.` or `; ` outside quotes and
 * braces that does not continue a number (graphql-js prints the literal the
 * caller typed there, `{city: "Shang.hai"}` or `12.5`, then `.` or `; ` and
 * a reason). Nothing of the value may be left behind, so without such an end
 * the rest of the message goes too.
 */
function endOfFound(found: string): number {
  let depth = 0;
  let quoted = false;
  for (let i = ', found '.length; i < found.length; i++) {
    const c = found[i];
    if (!quoted && found.startsWith('"""', i)) {
      // A block string: only \""" escapes inside it.
      let close = found.indexOf('"""', i + 3);
      while (close > 0 && found[close - 1] === '\\') close = found.indexOf('"""', close + 3);
      if (close < 0) return found.length;
      i = close + 2;
    } else if (quoted) {
      if (c === '\\') i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') quoted = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') depth--;
    else if (depth <= 0 && ((c === '.' && (i + 1 === found.length || found[i + 1] === ' ')) || (c === ';' && found[i + 1] === ' '))) return i;
  }
  return found.length;
}

/**
 * The one place unknown errors are masked: a known code keeps its message,
 * anything else (driver errors with SQL, constraint details, bugs) becomes a
 * bare INTERNAL_SERVER_ERROR. Stack traces never leave the process.
 */
export function formatError(formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError {
  if (databaseUnavailable(error)) {
    return { message: 'database unavailable, try again shortly', ...(formatted.path ? { path: formatted.path } : {}), extensions: { code: 'SERVICE_UNAVAILABLE' } };
  }
  const code = typeof formatted.extensions?.code === 'string' ? formatted.extensions.code : undefined;
  if (code && (knownCodes.has(code) || apolloCodes.has(code))) {
    const { stacktrace: _s, exception: _e, http: _h, ...extensions } = formatted.extensions ?? {};
    const message = code === 'BAD_USER_INPUT' || code === 'GRAPHQL_VALIDATION_FAILED' ? withholdValues(formatted.message) : formatted.message;
    return { message, ...(formatted.locations ? { locations: formatted.locations } : {}), ...(formatted.path ? { path: formatted.path } : {}), extensions };
  }
  return {
    message: 'internal error',
    ...(formatted.path ? { path: formatted.path } : {}),
    extensions: { code: 'INTERNAL_SERVER_ERROR' },
  };
}
