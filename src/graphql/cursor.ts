import { createCipheriv, createDecipheriv, createHash } from 'node:crypto';
import { freshIv } from '../crypto/iv.js';
import { BadUserInputError } from '../errors.js';

/**
 * Opaque, tamper-checked cursors: AES-256-GCM over the sort key and id, with
 * the query shape and principal as authenticated data. Encrypted rather than
 * only signed, because a sort key may be a value the caller sees masked.
 */
export interface CursorPayload {
  /** Sort key as text, exactly as PostgreSQL printed it. */
  k: string | null;
  id: string;
}

const keyCache = new Map<string, Buffer>();
function keyOf(secret: string): Buffer {
  let key = keyCache.get(secret);
  if (!key) {
    key = createHash('sha256').update('custos/cursor/v1\0').update(secret).digest();
    keyCache.set(secret, key);
  }
  return key;
}

export function encodeCursor(secret: string, scope: string, payload: CursorPayload): string {
  const iv = freshIv(12);
  const cipher = createCipheriv('aes-256-gcm', keyOf(secret), iv);
  cipher.setAAD(Buffer.from(scope));
  const body = Buffer.concat([cipher.update(JSON.stringify(payload), 'utf8'), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), body]).toString('base64url');
}

export function decodeCursor(secret: string, scope: string, cursor: string): CursorPayload {
  const invalid = () => new BadUserInputError('invalid cursor', { argument: 'after' });
  if (cursor.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(cursor)) throw invalid();
  const raw = Buffer.from(cursor, 'base64url');
  if (raw.length < 29) throw invalid();
  try {
    const decipher = createDecipheriv('aes-256-gcm', keyOf(secret), raw.subarray(0, 12));
    decipher.setAAD(Buffer.from(scope));
    decipher.setAuthTag(raw.subarray(12, 28));
    const text = Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
    const parsed = JSON.parse(text) as Partial<CursorPayload>;
    if (typeof parsed.id !== 'string' || !(typeof parsed.k === 'string' || parsed.k === null)) throw invalid();
    return { k: parsed.k, id: parsed.id };
  } catch {
    throw invalid();
  }
}
