import { createHmac, timingSafeEqual } from 'node:crypto';
import { BadUserInputError } from '../errors.js';

/**
 * Opaque, tamper-checked cursors: base64url(JSON) + HMAC. The MAC binds the
 * cursor to the query shape and the principal, so a cursor cannot be forged
 * or replayed into another query to probe values.
 */
export interface CursorPayload {
  /** Sort key as text, exactly as PostgreSQL printed it. */
  k: string | null;
  id: string;
}

function mac(secret: string, scope: string, body: string): Buffer {
  return createHmac('sha256', secret).update(scope).update('\0').update(body).digest().subarray(0, 16);
}

export function encodeCursor(secret: string, scope: string, payload: CursorPayload): string {
  const body = Buffer.from(JSON.stringify(payload)).toString('base64url');
  return `${body}.${mac(secret, scope, body).toString('base64url')}`;
}

export function decodeCursor(secret: string, scope: string, cursor: string): CursorPayload {
  const invalid = () => new BadUserInputError('invalid cursor', { argument: 'after' });
  const [body, tag, rest] = cursor.split('.');
  if (!body || !tag || rest !== undefined || cursor.length > 512) throw invalid();
  const expected = mac(secret, scope, body);
  const given = Buffer.from(tag, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw invalid();
  try {
    const parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Partial<CursorPayload>;
    if (typeof parsed.id !== 'string' || !(typeof parsed.k === 'string' || parsed.k === null)) throw invalid();
    return { k: parsed.k, id: parsed.id };
  } catch {
    throw invalid();
  }
}
