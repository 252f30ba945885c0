import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { customers, interactions } from '../db/schema/index.js';
import { REDACTED, type MaskStrategy } from './masks.js';
import type { SubjectName } from './subjects.js';

/**
 * How a maskable field is stored. `stored` fields keep the masked rendition
 * beside the value (computed at write time); `encrypted` ones hold only a
 * ciphertext, so raw comes from decrypting `enc` (column name doubles as the
 * authenticated data). `computed` fields are plain and masked in SQL.
 */
export type Storage =
  | { kind: 'stored'; strategy: MaskStrategy; raw: PgColumn; masked: PgColumn }
  | { kind: 'encrypted'; strategy: MaskStrategy; enc: PgColumn; masked: PgColumn; aad: string }
  | { kind: 'computed'; raw: PgColumn };

const storage: Partial<Record<SubjectName, Record<string, Storage>>> = {
  Customer: {
    name: { kind: 'stored', strategy: 'surname', raw: customers.name, masked: customers.nameMasked },
    phone: { kind: 'encrypted', strategy: 'last4', enc: customers.phoneEnc, masked: customers.phoneMasked, aad: 'phone' },
    email: { kind: 'encrypted', strategy: 'email', enc: customers.emailEnc, masked: customers.emailMasked, aad: 'email' },
    address: {
      kind: 'encrypted',
      strategy: 'province_city',
      enc: customers.addressEnc,
      masked: customers.addressMasked,
      aad: 'address',
    },
    idNumber: { kind: 'encrypted', strategy: 'redact', enc: customers.idNumberEnc, masked: customers.idNumberMasked, aad: 'id_number' },
    birthDate: {
      kind: 'encrypted',
      strategy: 'age_band',
      enc: customers.birthDateEnc,
      masked: customers.birthDateMasked,
      aad: 'birth_date',
    },
  },
  Interaction: {
    summary: { kind: 'computed', raw: interactions.summary },
  },
};

export function storageOf(subject: SubjectName, field: string): Storage | undefined {
  return storage[subject]?.[field];
}

/** Encrypted fields of a subject: they have no plain column and need storage to be read at all. */
export function isEncrypted(subject: SubjectName, field: string): boolean {
  return storageOf(subject, field)?.kind === 'encrypted';
}

/** SQL that masks a plain column by strategy, for fields whose masked rendition is not stored. */
export function maskInSql(strategy: MaskStrategy, column: PgColumn): SQL | undefined {
  switch (strategy) {
    case 'redact':
      return sql`${REDACTED}::text`;
    case 'last4':
      return sql`repeat('*', greatest(char_length(${column}) - 4, 0)) || right(${column}, 4)`;
    case 'surname':
      return sql`left(${column}, 1) || repeat('*', greatest(char_length(${column}) - 1, 1))`;
    case 'email':
      return sql`left(${column}, 1) || '***' || substring(${column} from position('@' in ${column}))`;
    case 'province_city':
    case 'age_band':
    case 'hmac':
      return undefined;
  }
}

/**
 * Checks that the bundle's masking strategies agree with what is stored:
 * a stored rendition computed with one strategy cannot be served as another.
 */
export function storageProblems(strategyOf: (subject: SubjectName, field: string) => MaskStrategy | undefined): string[] {
  const problems: string[] = [];
  for (const [subject, fields] of Object.entries(storage) as Array<[SubjectName, Record<string, Storage>]>) {
    for (const [field, s] of Object.entries(fields)) {
      const strategy = strategyOf(subject, field);
      if (s.kind === 'computed') {
        if (strategy && !maskInSql(strategy, s.raw)) problems.push(`${subject}.${field}: strategy ${strategy} cannot be computed in SQL`);
      } else if (strategy !== s.strategy) {
        problems.push(`${subject}.${field}: stored rendition is ${s.strategy}, masking.yaml says ${strategy ?? 'none'}`);
      }
    }
  }
  return problems;
}
