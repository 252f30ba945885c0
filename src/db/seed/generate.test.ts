import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { demoPrincipals } from '../../authz/policy/demo-principals.js';
import type { CustomerPlain } from '../../crypto/customer-record.js';
import { MOBILE_PREFIXES, PROVINCES } from './china.js';
import {
  customerAt,
  generateCustomers,
  generateSeed,
  MAX_CUSTOMERS,
  seedPlan,
  seedPrincipals,
  type SeedPlan,
} from './generate.js';
import { permuteDigits } from './random.js';

const asOf = new Date('2026-03-01T00:00:00Z');
const plan = (seed = 7, customers = 300): SeedPlan => seedPlan({ customers, seed, asOf });
const many = (p: SeedPlan, count: number): CustomerPlain[] => [...generateCustomers({ ...p, count })];

/** GB 11643 check character, computed independently of the generator's own implementation. */
function expectedCheck(id: string): string {
  let sum = 0;
  for (let i = 0; i < 17; i++) sum += Number(id[i]) * (2 ** (17 - i) % 11);
  return ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][sum % 11]!;
}

function ageAt(birthDate: string, at: Date): number {
  const b = new Date(`${birthDate}T00:00:00Z`);
  const before = at.getUTCMonth() < b.getUTCMonth() || (at.getUTCMonth() === b.getUTCMonth() && at.getUTCDate() < b.getUTCDate());
  return at.getUTCFullYear() - b.getUTCFullYear() - (before ? 1 : 0);
}

describe(customerAt.name, () => {
  it('gives the same customer for the same seed and index', () => {
    expect(customerAt(plan(), 42)).toEqual(customerAt(plan(), 42));
    expect([...generateSeed({ ...plan(), count: 30 })]).toEqual([...generateSeed({ ...plan(), count: 30 })]);
  });

  it('does not depend on the customers generated before it', () => {
    expect(many(plan(), 120)[117]).toEqual(customerAt(plan(), 117));
  });

  it('gives different people for different seeds', () => {
    const a = many(plan(1), 50).map((c) => c.phone);
    const b = many(plan(2), 50).map((c) => c.phone);
    expect(a.filter((phone, i) => phone === b[i])).toEqual([]);
  });

  it('refuses indexes outside the supported range', () => {
    expect(() => customerAt(plan(), MAX_CUSTOMERS)).toThrow(RangeError);
    expect(() => customerAt(plan(), -1)).toThrow(RangeError);
  });

  it('writes 18-character id numbers with a valid check character, the birth date and a gender-parity sequence', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_CUSTOMERS - 1 }), (index) => {
        const c = customerAt(plan(), index);
        if (c.idNumber === null) return;
        expect(c.idNumber).toMatch(/^\d{17}[\dX]$/);
        expect(c.idNumber[17]).toBe(expectedCheck(c.idNumber));
        expect(c.idNumber.slice(6, 14)).toBe(c.birthDate!.replaceAll('-', ''));
        expect(Number(c.idNumber[16]) % 2).toBe(c.gender === 'M' ? 1 : 0);
        const province = PROVINCES.find((p) => p.name === c.province)!;
        const city = province.cities.find(([name]) => name === c.city)!;
        expect(c.idNumber.slice(0, 4)).toBe(city[1]);
        expect(c.idNumber.slice(0, 2)).toBe(province.code);
      }),
      { numRuns: 500 },
    );
  });

  it('includes check character X for some customers (the rarest check value is still produced)', () => {
    expect(many(plan(), 2000).some((c) => c.idNumber?.endsWith('X'))).toBe(true);
  });

  it('gives ages from 18 to 80 as of mid-2025, and genders F or M', () => {
    for (const c of many(plan(), 2000)) {
      const age = ageAt(c.birthDate!, new Date('2025-07-01T00:00:00Z'));
      expect(age).toBeGreaterThanOrEqual(18);
      expect(age).toBeLessThanOrEqual(80);
      expect(['F', 'M']).toContain(c.gender);
    }
  });

  it('writes unique 11-digit mobile numbers with real prefixes', () => {
    const phones = many(plan(), 5000).map((c) => c.phone!);
    for (const phone of phones) {
      expect(phone).toMatch(/^1\d{10}$/);
      expect(MOBILE_PREFIXES).toContain(phone.slice(0, 3));
    }
    expect(new Set(phones).size).toBe(phones.length);
  });

  it('writes unique, well-formed email addresses (or none)', () => {
    const emails = many(plan(), 5000).flatMap((c) => (c.email === null ? [] : [c.email]));
    expect(emails.length).toBeGreaterThan(4000);
    for (const email of emails) expect(email).toMatch(/^[a-z0-9_.]+@[a-z0-9-]+(\.[a-z0-9-]+)+$/);
    expect(new Set(emails).size).toBe(emails.length);
  });

  it('places each customer in a real province and one of its cities, the address starting with both', () => {
    for (const c of many(plan(), 2000)) {
      const province = PROVINCES.find((p) => p.name === c.province);
      expect(province?.cities.map(([name]) => name)).toContain(c.city);
      if (c.address !== null) expect(c.address.startsWith(c.province === c.city ? c.city : c.province + c.city)).toBe(true);
    }
  });

  it("gives each customer its owner's department, owners being active sales reps only", () => {
    const reps = new Map(demoPrincipals.map((p) => [p.id, p]));
    for (const c of many(plan(), 1000)) {
      const owner = reps.get(c.ownerId)!;
      expect(owner.roles).toContain('sales_rep');
      expect(owner.status).toBe('active');
      expect(c.department).toBe(owner.department);
    }
  });

  it('gives each demo rep at least a few dozen customers in the default demo seed', () => {
    const counts = new Map<string, number>();
    for (const c of many(seedPlan({ customers: 300, asOf }), 300)) counts.set(c.ownerId, (counts.get(c.ownerId) ?? 0) + 1);
    expect([...counts.keys()].sort()).toEqual(['u-rep-1', 'u-rep-2', 'u-rep-3']);
    for (const n of counts.values()) expect(n).toBeGreaterThanOrEqual(50);
  });
});

describe(seedPrincipals.name, () => {
  it('adds synthetic reps in every department for big seeds, keeping the demo reps as owners', () => {
    const people = seedPrincipals(100_000);
    expect(people.length).toBe(demoPrincipals.length + 200);
    expect(new Set(people.map((p) => p.id)).size).toBe(people.length);
    const owners = seedPlan({ customers: 100_000 }).owners.map((o) => o.id);
    expect(owners).toEqual(expect.arrayContaining(['u-rep-1', 'u-rep-2', 'u-rep-3', 'u-rep-1001']));
    expect(owners).not.toContain('u-gone-1');
    expect(new Set(people.filter((p) => p.id.startsWith('u-rep-1')).map((p) => p.department))).toEqual(
      new Set(['east', 'west', 'north', 'south']),
    );
  });
});

describe(generateSeed.name, () => {
  const bundles = [...generateSeed({ ...plan(), count: 2000 })];

  it('gives about ten orders per customer, from 0 to 25, in CNY with two-decimal amounts', () => {
    const counts = bundles.map((b) => b.orders.length);
    const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
    expect(mean).toBeGreaterThan(9);
    expect(mean).toBeLessThan(12);
    expect(Math.max(...counts)).toBeLessThanOrEqual(25);
    // Collect the offenders rather than assert per row: 20k expect() calls would dominate the run time.
    const orders = bundles.flatMap((b) => b.orders);
    expect(orders.filter((o) => !/^\d+\.\d{2}$/.test(o.amount) || Number(o.amount) <= 0)).toEqual([]);
    expect(new Set(orders.map((o) => o.currency))).toEqual(new Set(['CNY']));
    expect(new Set(orders.map((o) => o.channel))).toEqual(new Set(['online', 'store', 'phone', 'app']));
    expect(new Set(orders.map((o) => o.status))).toEqual(new Set(['paid', 'shipped', 'delivered', 'refunded', 'cancelled']));
  });

  it("dates orders within the last three years, after the customer's creation", () => {
    const threeYears = asOf.getTime() - 3 * 365 * 86_400_000;
    const outside = bundles.flatMap(({ customer, orders }) =>
      orders.filter((o) => o.placedAt.getTime() < Math.max(threeYears, customer.createdAt!.getTime()) || o.placedAt > asOf),
    );
    expect(outside).toEqual([]);
  });

  it('records interactions by the owner with summaries free of personal data', () => {
    const all = bundles.flatMap((b) => b.interactions.map((i) => ({ i, c: b.customer })));
    expect(all.length / bundles.length).toBeGreaterThan(2.5);
    expect(all.filter(({ i, c }) => i.principalId !== c.ownerId)).toEqual([]);
    expect(new Set(all.map(({ i }) => i.channel))).toEqual(new Set(['call', 'email', 'wechat', 'visit']));
    expect(all.filter(({ i, c }) => /\d/.test(i.summary) || i.summary.includes(c.name))).toEqual([]);
  });

  it('grants consents per purpose, some withdrawn after they were granted', () => {
    const consents = bundles.flatMap((b) => b.consents);
    expect(new Set(consents.map((c) => c.purpose))).toEqual(new Set(['contact', 'marketing', 'analytics']));
    const withdrawn = consents.filter((c) => c.withdrawnAt);
    expect(withdrawn.length).toBeGreaterThan(0);
    for (const c of withdrawn) expect(c.withdrawnAt!.getTime()).toBeGreaterThanOrEqual(c.grantedAt.getTime());
  });

  it('gives every row a distinct, well-formed UUID', () => {
    const ids = bundles.flatMap((b) => [b.customer.id, ...b.orders, ...b.interactions, ...b.consents].map((r) => (typeof r === 'string' ? r : r.id!)));
    expect(ids.filter((id) => !/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(id))).toEqual([]);
    expect(new Set(ids).size).toBe(ids.length);
  });
});

describe(permuteDigits.name, () => {
  it('is a bijection on its domain', () => {
    const out = Array.from({ length: 10_000 }, (_, i) => permuteDigits(i, 2, 12345));
    expect(new Set(out).size).toBe(10_000);
    expect(Math.max(...out)).toBeLessThan(10_000);
  });
});
