import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { summarize } from './decision.js';
import type { Projection } from './projection.js';
import type { Cell, RenderedRow } from './reader.js';

const states = ['raw', 'masked', 'revealed', 'denied', 'unavailable'] as const;

/** summarize reads a plan's field and purpose and the projection's subject only. */
function projectionOf(plans: Array<{ field: string; purpose: string | undefined }>): Projection {
  return { subject: 'Customer', cells: plans } as unknown as Projection;
}

function rowsOf(projection: Projection, grid: Array<Array<(typeof states)[number]>>): RenderedRow[] {
  return grid.map((cellStates, i) => ({
    id: `c-${i}`,
    attrs: {},
    cells: cellStates.map((state): Cell => (state === 'denied' || state === 'unavailable' ? { state } : { state, value: 'v' })),
    extra: {},
    projection,
  }));
}

const plans = fc.uniqueArray(
  fc.record({ field: fc.constantFrom('name', 'phone', 'email', 'city'), purpose: fc.constantFrom(undefined, 'contact', 'dsr') }),
  { minLength: 1, maxLength: 4, selector: (p) => `${p.field}/${p.purpose ?? ''}` },
);

describe(summarize.name, () => {
  it('says for every revealed cell which record revealed it under which purpose, and never repeats the read in a reveal record', () => {
    fc.assert(
      fc.property(
        plans.chain((ps) => fc.tuple(fc.constant(ps), fc.array(fc.array(fc.constantFrom(...states), { minLength: ps.length, maxLength: ps.length }), { maxLength: 6 }))),
        ([ps, grid]) => {
          const projection = projectionOf(ps);
          const rows = rowsOf(projection, grid);
          const decisions = summarize(projection, rows);
          const [read, ...reveals] = decisions;
          expect(read).toMatchObject({ action: 'read', recordIds: rows.map((r) => r.id), decision: 'allow' });
          expect(reveals.every((d) => d.action === 'reveal')).toBe(true);
          for (const row of rows) {
            row.cells.forEach((cell, i) => {
              if (cell.state !== 'revealed') return;
              const { field, purpose } = ps[i]!;
              expect(read!.fields.revealed).toContain(field);
              const saying = decisions.filter((d) => d.recordIds.includes(row.id) && d.fields.revealed.includes(field) && d.purpose === (purpose ?? null));
              expect(saying.length, `${row.id}.${field} revealed for ${purpose ?? 'no purpose'}`).toBeGreaterThan(0);
            });
          }
          const revealedUnder = (row: RenderedRow, purpose: string | null) =>
            row.cells.some((cell, i) => cell.state === 'revealed' && (ps[i]!.purpose ?? null) === purpose);
          // Every record a reveal names revealed something under its purpose.
          for (const d of reveals) for (const id of d.recordIds) expect(revealedUnder(rows.find((r) => r.id === id)!, d.purpose)).toBe(true);
          // A read that stands for its reveal: every row revealed under the read's purpose, and nothing under another.
          if (reveals.length === 0 && read!.fields.revealed.length > 0) {
            for (const row of rows) expect(revealedUnder(row, read!.purpose)).toBe(true);
            for (const p of [null, 'contact', 'dsr'].filter((p) => p !== read!.purpose)) for (const row of rows) expect(revealedUnder(row, p)).toBe(false);
          }
          if (read!.purpose !== null) expect(reveals).toEqual([]);
          for (const d of reveals) {
            // No reveal record repeats the read: one of every row is under a purpose the read does not state.
            if (d.recordIds.length === rows.length) expect(d.purpose).not.toBe(read!.purpose);
            // A reveal of every row without a purpose is the read's own.
            if (d.purpose === null) expect(d.recordIds.length).toBeLessThan(rows.length);
          }
          // A lone reveal of every row stands beside the read only when the read holds a purpose-less reveal of every row.
          if (reveals.length === 1 && reveals[0]!.recordIds.length === rows.length) {
            expect(read!.purpose).toBeNull();
            for (const row of rows) expect(revealedUnder(row, null)).toBe(true);
          }
        },
      ),
    );
  });

  it('writes one record for a list whose one reveal covers every row', () => {
    const projection = projectionOf([
      { field: 'name', purpose: undefined },
      { field: 'phone', purpose: undefined },
    ]);
    const decisions = summarize(projection, rowsOf(projection, [['revealed', 'masked'], ['revealed', 'masked']]));
    expect(decisions).toEqual([
      {
        subject: 'Customer', action: 'read', recordIds: ['c-0', 'c-1'], purpose: null, decision: 'allow', reason: null,
        fields: { raw: [], masked: ['phone'], revealed: ['name'], denied: [] },
      },
    ]);
  });

  it('keeps a record per purpose the read does not state, and one for a reveal of only some rows', () => {
    const two = projectionOf([
      { field: 'name', purpose: undefined },
      { field: 'phone', purpose: 'contact' },
    ]);
    // A rep's point read revealing the name (standing, no purpose) and the phone for contact: the read says the name.
    const both = summarize(two, rowsOf(two, [['revealed', 'revealed']]));
    expect(both.map((d) => [d.action, d.purpose, d.fields.revealed, d.recordIds])).toEqual([
      ['read', null, ['name', 'phone'], ['c-0']],
      ['reveal', 'contact', ['phone'], ['c-0']],
    ]);
    // The name revealed on one row of two: its own record, as the phone's for contact on both.
    const partly = summarize(two, rowsOf(two, [['revealed', 'revealed'], ['masked', 'revealed']]));
    expect(partly.map((d) => [d.action, d.purpose, d.recordIds])).toEqual([
      ['read', null, ['c-0', 'c-1']],
      ['reveal', null, ['c-0']],
      ['reveal', 'contact', ['c-0', 'c-1']],
    ]);
    const contactAndDsr = projectionOf([
      { field: 'phone', purpose: 'contact' },
      { field: 'email', purpose: 'dsr' },
    ]);
    expect(summarize(contactAndDsr, rowsOf(contactAndDsr, [['revealed', 'revealed']])).map((d) => [d.action, d.purpose])).toEqual([
      ['read', null],
      ['reveal', 'contact'],
      ['reveal', 'dsr'],
    ]);
    const one = projectionOf([{ field: 'phone', purpose: 'contact' }]);
    const some = summarize(one, rowsOf(one, [['revealed'], ['masked']]));
    expect(some.map((d) => [d.action, d.purpose, d.recordIds])).toEqual([
      ['read', null, ['c-0', 'c-1']],
      ['reveal', 'contact', ['c-0']],
    ]);
  });
});
