import type { customerKeys, customers } from '../db/schema/index.js';
import { ageBand, maskAddress, maskEmail, maskLast4, maskSurname, REDACTED } from '../authz/masks.js';
import { blindIndex, encryptField, newDataKey, unwrapDataKey, wrapDataKey, type Keyring, type WrappedKey } from './envelope.js';

/** Key material the write path needs: the KEK keyring and the blind-index key. */
export interface CryptoKeys {
  keyring: Keyring;
  blindIndexKey: Buffer;
}

/** A customer as a person knows it, before it is sealed for storage. */
export interface CustomerPlain {
  id: string;
  name: string;
  phone: string | null;
  email: string | null;
  address: string | null;
  province: string;
  city: string;
  idNumber: string | null;
  birthDate: string | null;
  gender: string | null;
  tier: string;
  segment: string;
  ownerId: string;
  department: string;
  createdAt?: Date;
  updatedAt?: Date;
}

export type SensitiveColumn = 'phone' | 'email' | 'address' | 'id_number' | 'birth_date';

type CustomerRow = typeof customers.$inferInsert;
type CustomerKeyRow = typeof customerKeys.$inferInsert;

/** The stored columns of one sensitive value: ciphertext, masked rendition and (phone/email) blind index. */
export function sealContact(
  keys: CryptoKeys,
  dek: Buffer,
  customerId: string,
  field: 'phone' | 'email',
  value: string | null,
): { enc: Buffer | null; masked: string | null; bidx: Buffer | null } {
  if (value === null) return { enc: null, masked: null, bidx: null };
  return {
    enc: encryptField(dek, customerId, field, value),
    masked: field === 'phone' ? maskLast4(value) : maskEmail(value),
    bidx: blindIndex(keys.blindIndexKey, field, value),
  };
}

export function sealAddress(dek: Buffer, c: Pick<CustomerPlain, 'id' | 'address' | 'province' | 'city'>) {
  return {
    addressEnc: c.address === null ? null : encryptField(dek, c.id, 'address', c.address),
    addressMasked: c.address === null ? null : maskAddress(c.province, c.city),
  };
}

/** Seals a new customer: a fresh data key, ciphertexts, masks and blind indexes. */
export function sealCustomer(keys: CryptoKeys, c: CustomerPlain): { row: CustomerRow; key: CustomerKeyRow } {
  const dek = newDataKey();
  const wrapped = wrapDataKey(keys.keyring, c.id, dek);
  const phone = sealContact(keys, dek, c.id, 'phone', c.phone);
  const email = sealContact(keys, dek, c.id, 'email', c.email);
  const row: CustomerRow = {
    id: c.id,
    name: c.name,
    nameMasked: maskSurname(c.name),
    phoneEnc: phone.enc,
    phoneMasked: phone.masked,
    phoneBidx: phone.bidx,
    emailEnc: email.enc,
    emailMasked: email.masked,
    emailBidx: email.bidx,
    ...sealAddress(dek, c),
    province: c.province,
    city: c.city,
    idNumberEnc: c.idNumber === null ? null : encryptField(dek, c.id, 'id_number', c.idNumber),
    idNumberMasked: c.idNumber === null ? null : REDACTED,
    birthDateEnc: c.birthDate === null ? null : encryptField(dek, c.id, 'birth_date', c.birthDate),
    birthDateMasked: c.birthDate === null ? null : ageBand(c.birthDate),
    gender: c.gender,
    tier: c.tier,
    segment: c.segment,
    ownerId: c.ownerId,
    department: c.department,
    ...(c.createdAt ? { createdAt: c.createdAt } : {}),
    ...(c.updatedAt ? { updatedAt: c.updatedAt } : {}),
  };
  return { row, key: { customerId: c.id, kekId: wrapped.kekId, wrappedKey: wrapped.wrapped } };
}

/** Recovers a customer's data key from its stored wrapped form. */
export function openDataKey(keys: CryptoKeys, customerId: string, stored: WrappedKey): Buffer {
  return unwrapDataKey(keys.keyring, customerId, stored);
}
