import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decryptField,
  DecryptionError,
  encryptField,
  KeyUnavailableError,
  newDataKey,
  rewrapDataKey,
  unwrapDataKey,
  wrapDataKey,
  type Keyring,
} from './envelope.js';
import { assertRotatable, RotationError } from './rotate.js';

const kekId = fc.stringMatching(/^[A-Za-z0-9_.-]{1,16}$/);
const keyMaterial = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b));
const customerId = fc.uuid();
const column = fc.constantFrom('phone', 'email', 'address', 'id_number', 'birth_date');

/** A keyring of 1–5 KEKs with distinct ids, one of them active. */
const keyringArb = fc
  .uniqueArray(fc.tuple(kekId, keyMaterial), { minLength: 1, maxLength: 5, selector: ([id]) => id })
  .chain((entries) => fc.constantFrom(...entries.map(([id]) => id)).map((active): Keyring => ({ keys: new Map(entries), activeKekId: active })));

/** The same keyring with one more KEK, made the active one: step 1 and 2 of a rotation. */
function withNewActive(keyring: Keyring, id: string, key: Buffer): Keyring {
  return { keys: new Map([...keyring.keys, [id, key]]), activeKekId: id };
}

/** The error `run` throws; fails the test when it throws nothing. */
function errorOf(run: () => unknown): Error {
  try {
    run();
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected an error, none was thrown');
}

const only = (keyring: Keyring, id: string): Keyring => ({ keys: new Map([[id, keyring.keys.get(id)!]]), activeKekId: id });

describe(wrapDataKey.name, () => {
  it('round-trips a data key under any keyring, with the active KEK named', () => {
    fc.assert(
      fc.property(keyringArb, customerId, (keyring, id) => {
        const dek = newDataKey();
        const wrapped = wrapDataKey(keyring, id, dek);
        expect(wrapped.kekId).toBe(keyring.activeKekId);
        expect(unwrapDataKey(keyring, id, wrapped).equals(dek)).toBe(true);
      }),
    );
  });

  it('binds the wrapped key to its customer: another customer id fails authentication', () => {
    fc.assert(
      fc.property(keyringArb, customerId, customerId, (keyring, id, other) => {
        fc.pre(id !== other);
        const wrapped = wrapDataKey(keyring, id, newDataKey());
        expect(() => unwrapDataKey(keyring, other, wrapped)).toThrow(DecryptionError);
      }),
    );
  });

  it('refuses a KEK id missing from the keyring, naming the id and no key material', () => {
    fc.assert(
      fc.property(keyringArb, kekId, customerId, (keyring, missing, id) => {
        fc.pre(!keyring.keys.has(missing));
        const wrapped = { ...wrapDataKey(keyring, id, newDataKey()), kekId: missing };
        const error = errorOf(() => unwrapDataKey(keyring, id, wrapped));
        expect(error).toBeInstanceOf(KeyUnavailableError);
        expect(error.message).toContain(missing);
        for (const key of keyring.keys.values()) expect(error.message).not.toContain(key.toString('base64'));
      }),
    );
  });

  it('fails authentication on any single flipped bit of the wrapped key', () => {
    fc.assert(
      fc.property(keyringArb, customerId, fc.nat(), fc.integer({ min: 0, max: 7 }), (keyring, id, at, bit) => {
        const wrapped = wrapDataKey(keyring, id, newDataKey());
        const bytes = Buffer.from(wrapped.wrapped);
        bytes[at % bytes.length]! ^= 1 << bit;
        expect(() => unwrapDataKey(keyring, id, { ...wrapped, wrapped: bytes })).toThrow(DecryptionError);
      }),
    );
  });
});

describe(rewrapDataKey.name, () => {
  it('moves a data key under the new active KEK: same key, readable with the new KEK alone, so old ciphertexts still decrypt', () => {
    fc.assert(
      fc.property(keyringArb, kekId, keyMaterial, customerId, column, fc.string(), (keyring, newId, newKey, id, col, plain) => {
        fc.pre(!keyring.keys.has(newId));
        const dek = newDataKey();
        const stored = wrapDataKey(keyring, id, dek);
        const ciphertext = encryptField(dek, id, col, plain);
        const rotated = withNewActive(keyring, newId, newKey);
        const rewrapped = rewrapDataKey(rotated, id, stored);
        expect(rewrapped.kekId).toBe(newId);
        const retired = only(rotated, newId);
        expect(() => unwrapDataKey(retired, id, stored)).toThrow(KeyUnavailableError);
        expect(decryptField(unwrapDataKey(retired, id, rewrapped), id, col, ciphertext)).toBe(plain);
      }),
    );
  });

  it('is idempotent in effect: rewrapping twice still yields the same data key', () => {
    fc.assert(
      fc.property(keyringArb, customerId, (keyring, id) => {
        const dek = newDataKey();
        const twice = rewrapDataKey(keyring, id, rewrapDataKey(keyring, id, wrapDataKey(keyring, id, dek)));
        expect(unwrapDataKey(keyring, id, twice).equals(dek)).toBe(true);
      }),
    );
  });

  it('fails when the KEK id is right but its material is not', () => {
    fc.assert(
      fc.property(keyringArb, keyMaterial, customerId, (keyring, wrong, id) => {
        fc.pre(!wrong.equals(keyring.keys.get(keyring.activeKekId)!));
        const stored = wrapDataKey(keyring, id, newDataKey());
        const impostor: Keyring = { keys: new Map([...keyring.keys, [keyring.activeKekId, wrong]]), activeKekId: keyring.activeKekId };
        expect(() => rewrapDataKey(impostor, id, stored)).toThrow(DecryptionError);
      }),
    );
  });
});

describe(encryptField.name, () => {
  it('binds a ciphertext to its customer and column: moved anywhere else it fails authentication', () => {
    fc.assert(
      fc.property(customerId, customerId, column, column, fc.string(), (id, otherId, col, otherCol, plain) => {
        fc.pre(id !== otherId || col !== otherCol);
        const dek = newDataKey();
        const ciphertext = encryptField(dek, id, col, plain);
        expect(decryptField(dek, id, col, ciphertext)).toBe(plain);
        expect(() => decryptField(dek, otherId, otherCol, ciphertext)).toThrow(DecryptionError);
        expect(() => decryptField(newDataKey(), id, col, ciphertext)).toThrow(DecryptionError);
      }),
    );
  });
});

describe(assertRotatable.name, () => {
  it('names every KEK in use that the keyring lacks, with its key count, and no key material', () => {
    const pendingArb = fc.uniqueArray(fc.tuple(kekId, fc.integer({ min: 1, max: 1_000_000 })), { maxLength: 5, selector: ([id]) => id });
    fc.assert(
      fc.property(keyringArb, pendingArb, (keyring, entries) => {
        const pending = new Map(entries);
        const missing = entries.filter(([id]) => !keyring.keys.has(id));
        if (missing.length === 0) {
          expect(() => assertRotatable(keyring, pending)).not.toThrow();
          return;
        }
        const error = errorOf(() => assertRotatable(keyring, pending));
        expect(error).toBeInstanceOf(RotationError);
        for (const [id, n] of missing) expect(error.message).toContain(`${id} (${n} ${n === 1 ? 'key' : 'keys'})`);
        for (const key of keyring.keys.values()) expect(error.message).not.toContain(key.toString('base64'));
      }),
    );
  });
});
