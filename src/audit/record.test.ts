import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { auditActions, canonical, GENESIS_HASH, hashRecord, type Hashable, invalidReason } from './record.js';
import { auditEvent } from './test-db.js';

const at = new Date('2026-03-01T08:30:00.120Z');
const hashable = (overrides: Partial<Hashable> = {}): Hashable => ({ ...auditEvent(), seq: 1, at, ...overrides });

describe(canonical.name, () => {
  it('does not depend on the key order of the object it is given', () => {
    const record = hashable();
    const reversed = Object.fromEntries(Object.entries(record).reverse()) as unknown as Hashable;
    expect(canonical(reversed)).toBe(canonical(record));
  });

  it('writes time as ISO-8601 UTC with milliseconds and keeps nulls and array order', () => {
    const text = canonical(hashable({ recordIds: ['b', 'a'], purpose: null }));
    expect(text).toContain('"at":"2026-03-01T08:30:00.120Z"');
    expect(text).toContain('"recordIds":["b","a"]');
    expect(text).toContain('"purpose":null');
  });

  it('is, byte for byte, the JSON of the v1 object in its fixed key order', () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 8 });
    const list = fc.array(text, { maxLength: 4 });
    const record = fc.record({
      seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
      at: fc.date({ min: new Date('2000-01-01'), max: new Date('2999-12-31'), noInvalidDate: true }),
      traceId: fc.option(text),
      spanId: fc.option(text),
      principalId: text,
      roles: list,
      action: fc.constantFrom(...auditActions),
      subject: text,
      recordIds: list,
      fields: fc.record({ raw: list, masked: list, revealed: list, denied: list }),
      purpose: fc.option(text),
      decision: fc.constantFrom('allow' as const, 'deny' as const),
      reason: fc.option(text),
      policyVersion: text,
    });
    fc.assert(
      fc.property(record, (r) => {
        const v1 = JSON.stringify({
          v: 1, seq: r.seq, at: r.at.toISOString(), traceId: r.traceId, spanId: r.spanId, principalId: r.principalId, roles: r.roles,
          action: r.action, subject: r.subject, recordIds: r.recordIds,
          fields: { raw: r.fields.raw, masked: r.fields.masked, revealed: r.fields.revealed, denied: r.fields.denied },
          purpose: r.purpose, decision: r.decision, reason: r.reason, policyVersion: r.policyVersion,
        });
        expect(canonical(r)).toBe(v1);
      }),
    );
  });

  it('leaves out the hashes themselves', () => {
    const withHashes = { ...hashable(), prevHash: Buffer.alloc(32, 1), hash: Buffer.alloc(32, 2) };
    expect(canonical(withHashes)).toBe(canonical(hashable()));
  });
});

describe(hashRecord.name, () => {
  it('is the sha-256 of the previous hash followed by the canonical record', () => {
    const expected = createHash('sha256').update(Buffer.concat([GENESIS_HASH, Buffer.from(canonical(hashable()))])).digest();
    expect(hashRecord(GENESIS_HASH, hashable())).toEqual(expected);
    expect(GENESIS_HASH).toEqual(Buffer.alloc(32));
  });

  it.each<[string, Partial<Hashable>]>([
    ['seq', { seq: 2 }],
    ['time, by one millisecond', { at: new Date(at.getTime() + 1) }],
    ['a record id', { recordIds: ['other'] }],
    ['the order of record ids', { recordIds: [...auditEvent().recordIds, 'x'].reverse() }],
    ['a field moved from masked to revealed', { fields: { raw: ['name', 'city'], masked: [], revealed: ['phone'], denied: [] } }],
    ['a null turned into an empty string', { reason: '' }],
    ['the decision', { decision: 'deny' }],
  ])('changes when %s changes', (_what, change) => {
    expect(hashRecord(GENESIS_HASH, hashable(change))).not.toEqual(hashRecord(GENESIS_HASH, hashable()));
  });

  it('changes with the previous hash', () => {
    expect(hashRecord(Buffer.alloc(32, 1), hashable())).not.toEqual(hashRecord(GENESIS_HASH, hashable()));
  });
});

describe(invalidReason.name, () => {
  it('accepts a well-formed event', () => {
    expect(invalidReason(auditEvent())).toBeNull();
  });

  it.each<[string, object]>([
    ['action', { action: 'delete' }],
    ['decision', { decision: 'maybe' }],
    ['principalId', { principalId: '' }],
    ['traceId', { traceId: 42 }],
    ['roles', { roles: 'sales_rep' }],
    ['fields.denied', { fields: { raw: [], masked: [], revealed: [] } }],
    ['text', { purpose: 'a\u0000b' }],
    ['text', { recordIds: ['\udc00'] }],
  ])('names %s when it is malformed, without quoting the value', (key, change) => {
    const reason = invalidReason({ ...auditEvent(), ...change });
    expect(reason).toMatch(new RegExp(`^${key.replace('.', '\\.')}: `));
  });
});

describe('storable text', () => {
  it('refuses exactly the strings PostgreSQL text cannot keep as they are (NUL, an unpaired surrogate)', () => {
    const units = fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: fc.constantFrom('a', '\u0000', '\ud800', '\udc00', '\ud83d', '\ude00', '张') }));
    fc.assert(
      fc.property(units, (text) => {
        const keeps = !text.includes('\u0000') && Buffer.from(text, 'utf8').toString('utf8') === text;
        expect(invalidReason({ ...auditEvent(), reason: text }) === null).toBe(keeps);
      }),
      { numRuns: 2000 },
    );
  });
});
