import { ConfigError } from '../config.js';

type ErrorClass = abstract new (...args: never[]) => Error;

/**
 * A CLI failure as one line, never a stack: configuration errors name their
 * keys; errors of the `own` classes say their message; anything else gives
 * the innermost (driver's) reason and code, never drizzle's own message,
 * which quotes the SQL and its parameters.
 */
export function describeFailure(error: unknown, own: readonly ErrorClass[] = []): string {
  if (error instanceof ConfigError) {
    const [head, ...keys] = error.message.split('\n').map((line) => line.trim());
    return [head, keys.join('; ')].join(' ');
  }
  if (own.some((kind) => error instanceof kind)) return (error as Error).message;
  let cause: unknown = error;
  while (cause instanceof Error && cause.cause instanceof Error) cause = cause.cause;
  if (!(cause instanceof Error)) return `failed (${String(cause)})`;
  const code = (cause as { code?: unknown }).code;
  const reason = cause.message.split('\n')[0];
  return `failed: ${reason}${typeof code === 'string' && !reason?.includes(code) ? ` (${code})` : ''}`;
}
