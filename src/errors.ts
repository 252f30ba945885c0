import { GraphQLError } from 'graphql';

/**
 * The closed set of error codes custos answers with. Each class narrows
 * `extensions.code` to a literal; anything else is masked as INTERNAL_SERVER_ERROR
 * in exactly one place (src/server/format-error.ts). Messages never carry
 * personal values, SQL or stack traces.
 */
export type ErrorCode =
  | 'UNAUTHENTICATED'
  | 'FORBIDDEN'
  | 'BAD_USER_INPUT'
  | 'NOT_FOUND'
  | 'CONFLICT'
  | 'SERVICE_UNAVAILABLE'
  | 'INTERNAL_SERVER_ERROR';

abstract class CustosError<C extends ErrorCode> extends GraphQLError {
  abstract readonly code: C;
  constructor(message: string, code: C, extra: Record<string, unknown> = {}) {
    super(message, { extensions: { ...extra, code } });
  }
}

export class UnauthenticatedError extends CustosError<'UNAUTHENTICATED'> {
  readonly code = 'UNAUTHENTICATED' as const;
  constructor(message = 'authentication required') {
    super(message, 'UNAUTHENTICATED', { http: { status: 401 } });
  }
}

export class ForbiddenError extends CustosError<'FORBIDDEN'> {
  readonly code = 'FORBIDDEN' as const;
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(message, 'FORBIDDEN', extra);
  }

  /** A field the caller's policy can never grant, refused before any SQL runs. */
  static fields(subject: string, fields: string[], action = 'read'): ForbiddenError {
    return new ForbiddenError(`not permitted to ${action} ${subject}.${fields.join(`, ${subject}.`)}`, {
      subject,
      fields,
      action,
    });
  }
}

export class BadUserInputError extends CustosError<'BAD_USER_INPUT'> {
  readonly code = 'BAD_USER_INPUT' as const;
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(message, 'BAD_USER_INPUT', extra);
  }
}

/** The request is valid but the state it relies on has moved on (a grant decided, a dataset re-planned). */
export class ConflictError extends CustosError<'CONFLICT'> {
  readonly code = 'CONFLICT' as const;
  constructor(message: string, extra: Record<string, unknown> = {}) {
    super(message, 'CONFLICT', extra);
  }
}

export class ServiceUnavailableError extends CustosError<'SERVICE_UNAVAILABLE'> {
  readonly code = 'SERVICE_UNAVAILABLE' as const;
  constructor(message = 'service temporarily unavailable') {
    super(message, 'SERVICE_UNAVAILABLE', { http: { status: 503 } });
  }
}

export const knownCodes: ReadonlySet<string> = new Set<ErrorCode>([
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'BAD_USER_INPUT',
  'NOT_FOUND',
  'CONFLICT',
  'SERVICE_UNAVAILABLE',
]);
