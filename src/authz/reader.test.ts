import { subject as asSubject } from '@casl/ability';
import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Row } from '../db/execute.js';
import { loadBundle } from './policy/bundle.js';
import type { PolicyBundle } from './policy/types.js';
import type { Principal } from './principal.js';
import { planProjection, type Projection, type Requested } from './projection.js';
import { cellAt, inPageOrder, readRows, type EnforcementFault, type ReadContext } from './reader.js';
import { RequestAuthz } from './request-authz.js';

/**
 * The in-memory re-check, with SQL that lies: every row comes back flagged as
 * readable whatever its department or owner. Whatever the rows, the reader
 * must keep exactly those CASL allows, row by row and field by field, and
 * report each one it drops, even though it asks CASL once per alike rows.
 */

let bundle: PolicyBundle;
beforeAll(async () => {
  bundle = await loadBundle('policies');
});

const principal = (id: string, roles: string[], department: string | null): Principal => ({
  id,
  displayName: id,
  roles,
  department,
  region: null,
  status: 'active',
});

const callers = [
  principal('u-rep-1', ['sales_rep'], 'east'),
  principal('u-mgr-1', ['sales_manager'], 'east'),
  principal('u-both', ['sales_rep', 'sales_manager'], 'west'),
  principal('u-cs-1', ['customer_service'], 'support'),
];

const fields = ['id', 'name', 'phone', 'email', 'city', 'tier', 'ownerId', 'department'];
/** The fields above that the caller may ever read (asking for another is refused before any SQL). */
const requestedBy = (authz: RequestAuthz): Requested =>
  new Map(fields.filter((f) => authz.canEver('read', 'Customer', f)).map((f) => [f, new Set([undefined])]));

const customerRow = fc.record({
  department: fc.constantFrom('east', 'west', 'support', null),
  ownerId: fc.constantFrom('u-rep-1', 'u-both', 'u-mgr-1', null),
  city: fc.constantFrom('Hangzhou', 'Suzhou'),
});

/** A row as the lying SQL returns it: every flag true, every value column filled. */
function lyingRow(p: Projection, id: string, attrs: Record<string, unknown>): Row {
  const row: Row = {};
  for (const [name] of p.select) row[name] = name.startsWith('f') ? true : `value of ${name}`;
  for (const plan of p.cells) if (plan.revealFlag) row[plan.revealFlag] = false;
  for (const [i, attr] of p.attrs.entries()) row[p.attrColumns[i]!] = attr === 'id' ? id : attrs[attr];
  return row;
}

describe('the in-memory re-check of policed rows', () => {
  it('keeps exactly the rows and fields CASL allows, reporting each one it withholds, for every caller', async () => {
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...callers), fc.array(customerRow, { maxLength: 25 }), async (caller, generated) => {
        const authz = new RequestAuthz(bundle, caller);
        const projection = planProjection(authz, 'Customer', requestedBy(authz));
        const rows = generated.map((attrs, i) => ({ id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`, attrs }));
        const faults: EnforcementFault[] = [];
        const ctx: ReadContext = {
          db: undefined as never,
          keyring: undefined as never,
          authz,
          onFault: (f) => faults.push(f),
          observer: {
            enforce: (_subject, run) => run({ query: () => Promise.resolve(rows.map((r) => lyingRow(projection, r.id, r.attrs))), decided: () => undefined }),
          },
        };
        const rendered = await readRows(ctx, { projection, where: [], orderBy: [] });

        const ability = authz.ability();
        const expectedIds: string[] = [];
        const expectedFaults: EnforcementFault[] = [];
        for (const { id, attrs } of rows) {
          const target = asSubject('Customer', { id, ...Object.fromEntries(projection.attrs.filter((a) => a !== 'id').map((a) => [a, attrs[a as keyof typeof attrs]])) });
          if (!ability.can('read', target)) {
            expectedFaults.push({ subject: 'Customer', recordId: id, kind: 'row' });
            continue;
          }
          expectedIds.push(id);
          const row = rendered.find((r) => r.id === id);
          for (const plan of projection.cells) {
            const allowed = plan.readGrant.kind === 'always' || (plan.readGrant.kind === 'conditional' && ability.can('read', target, plan.field));
            expect((row && cellAt(row, plan.key))?.state === 'denied', `${caller.id} ${plan.field} of ${JSON.stringify(attrs)}`).toBe(!allowed);
            if (!allowed && plan.readFlag) expectedFaults.push({ subject: 'Customer', recordId: id, kind: 'read', field: plan.field });
          }
        }
        expect(rendered.map((r) => r.id)).toEqual(expectedIds);
        expect(faults).toEqual(expectedFaults);
      }),
      { numRuns: 150 },
    );
  });

  it('asks CASL once per distinct values of the attributes the conditions read, not once per row', async () => {
    const authz = new RequestAuthz(bundle, callers[1]!);
    const projection = planProjection(authz, 'Customer', requestedBy(authz));
    expect(projection.decisionAttrs).toEqual(['department']);
    const can = vi.spyOn(authz.ability(), 'can');
    const rows = Array.from({ length: 50 }, (_, i) => lyingRow(projection, `id-${i}`, { department: i % 2 ? 'east' : 'west' }));
    const ctx: ReadContext = {
      db: undefined as never,
      keyring: undefined as never,
      authz,
      onFault: () => undefined,
      observer: { enforce: (_subject, run) => run({ query: () => Promise.resolve(rows), decided: () => undefined }) },
    };
    const rendered = await readRows(ctx, { projection, where: [], orderBy: [] });
    expect(rendered).toHaveLength(25);
    expect(can.mock.calls.filter(([action, , field]) => action === 'read' && field === undefined)).toHaveLength(2);
  });
});

describe(inPageOrder.name, () => {
  /** Pages of 1..5 rows for up to 6 parents, their rows numbered as SQL numbers them. */
  const pages = fc
    .uniqueArray(fc.uuid(), { minLength: 0, maxLength: 6 })
    .chain((parents) => fc.tuple(...parents.map((parent) => fc.integer({ min: 1, max: 5 }).map((n) => Array.from({ length: n }, (_, i) => ({ __parent: parent, __rn: String(i + 1), v: `${parent}/${i}` }))))));

  it('returns rows already grouped by parent in page order as they are', () => {
    fc.assert(
      fc.property(pages, (groups) => {
        const rows: Row[] = groups.flat();
        expect(inPageOrder(rows)).toBe(rows);
      }),
    );
  });

  it('puts rows in any other order back into page order within each parent', () => {
    fc.assert(
      fc.property(
        pages.chain((groups) => fc.shuffledSubarray(groups.flat(), { minLength: groups.flat().length }).map((rows) => ({ groups, rows }))),
        ({ groups, rows }) => {
          const out = inPageOrder(rows);
          expect(out).toHaveLength(rows.length);
          const byParent = new Map<unknown, unknown[]>();
          for (const r of out) byParent.set(r.__parent, [...(byParent.get(r.__parent) ?? []), r.v]);
          for (const group of groups) expect(byParent.get(group[0]!.__parent)).toEqual(group.map((r) => r.v));
          // Grouped: a parent's rows are never split by another's.
          const seen = out.map((r) => r.__parent).filter((p, i, all) => i === 0 || all[i - 1] !== p);
          expect(new Set(seen).size).toBe(seen.length);
        },
      ),
    );
  });
});
