import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import { freshIv } from './iv.js';

/**
 * Envelope encryption: every customer has its own 256-bit data key (DEK),
 * stored wrapped by a key-encryption key (KEK) from the keyring. Field
 * ciphertexts are AES-256-GCM under the DEK with the customer id and column
 * as authenticated data, so a value copied to another row or column fails to
 * decrypt.
 */
export interface Keyring {
  keys: ReadonlyMap<string, Buffer>;
  activeKekId: string;
}

export interface WrappedKey {
  kekId: string;
  wrapped: Buffer;
}

export class KeyUnavailableError extends Error {
  override name = 'KeyUnavailableError';
}

/** A ciphertext that fails authentication: tampered, moved to another row/column, or shredded key. */
export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

const FORMAT_V1 = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

function seal(key: Buffer, plaintext: Buffer, aad: string): Buffer {
  const iv = freshIv(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([Buffer.of(FORMAT_V1), iv, cipher.getAuthTag(), body]);
}

function open(key: Buffer, blob: Buffer, aad: string): Buffer {
  if (blob.length < 1 + IV_BYTES + TAG_BYTES || blob[0] !== FORMAT_V1) {
    throw new DecryptionError('ciphertext has an unknown format');
  }
  const iv = blob.subarray(1, 1 + IV_BYTES);
  const tag = blob.subarray(1 + IV_BYTES, 1 + IV_BYTES + TAG_BYTES);
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, iv);
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(blob.subarray(1 + IV_BYTES + TAG_BYTES)), decipher.final()]);
  } catch {
    throw new DecryptionError('ciphertext failed authentication');
  }
}

const dekAad = (customerId: string) => `custos/dek/v1/${customerId}`;
const fieldAad = (customerId: string, column: string) => `custos/field/v1/${customerId}/${column}`;

/** A fresh random data key for one customer. */
export function newDataKey(): Buffer {
  return randomBytes(32);
}

/** Wraps a customer's data key under the keyring's active KEK. */
export function wrapDataKey(keyring: Keyring, customerId: string, dek: Buffer): WrappedKey {
  const kek = keyring.keys.get(keyring.activeKekId);
  if (!kek) throw new KeyUnavailableError(`key-encryption key ${keyring.activeKekId} is not in the keyring`);
  return { kekId: keyring.activeKekId, wrapped: seal(kek, dek, dekAad(customerId)) };
}

/** Unwraps a data key with whichever KEK wrapped it (old ids keep working during rotation). */
export function unwrapDataKey(keyring: Keyring, customerId: string, key: WrappedKey): Buffer {
  const kek = keyring.keys.get(key.kekId);
  if (!kek) throw new KeyUnavailableError(`key-encryption key ${key.kekId} is not in the keyring`);
  return open(kek, key.wrapped, dekAad(customerId));
}

/**
 * Re-wraps a data key under the active KEK: unwrapped with whichever KEK
 * wrapped it, wrapped again with the active one. The data key itself, and so
 * every ciphertext under it, stays the same.
 */
export function rewrapDataKey(keyring: Keyring, customerId: string, key: WrappedKey): WrappedKey {
  return wrapDataKey(keyring, customerId, unwrapDataKey(keyring, customerId, key));
}

export function encryptField(dek: Buffer, customerId: string, column: string, plaintext: string): Buffer {
  return seal(dek, Buffer.from(plaintext, 'utf8'), fieldAad(customerId, column));
}

export function decryptField(dek: Buffer, customerId: string, column: string, blob: Buffer): string {
  return open(dek, blob, fieldAad(customerId, column)).toString('utf8');
}

export type BlindIndexKind = 'phone' | 'email';

/** Normalizes a phone number to its 11 national digits (drops +86/0086 and separators). */
export function normalizePhone(value: string): string {
  const digits = value.replace(/[\s\-()]/g, '').replace(/^(\+86|0086)/, '');
  return digits;
}

export function normalizeEmail(value: string): string {
  return value.trim().toLowerCase();
}

/** Keyed HMAC of the normalized value: equal inputs give equal indexes, the index reveals nothing without the key. */
export function blindIndex(indexKey: Buffer, kind: BlindIndexKind, value: string): Buffer {
  const normalized = kind === 'phone' ? normalizePhone(value) : normalizeEmail(value);
  return createHmac('sha256', indexKey).update(`${kind}:${normalized}`).digest();
}
