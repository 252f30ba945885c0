import type { Projection } from './projection.js';
import type { RenderedRow } from './reader.js';
import type { SubjectName } from './subjects.js';

/**
 * What one policed read decided, summarised for the trace and the audit
 * trail: which records, which fields raw / masked / revealed / denied, for
 * which purpose. Ids and field names only, never values.
 */
export interface AccessDecision {
  subject: SubjectName;
  action: 'read' | 'reveal' | 'write' | 'export' | 'deny' | 'audit_read';
  recordIds: string[];
  fields: { raw: string[]; masked: string[]; revealed: string[]; denied: string[] };
  /** A reveal's declared purpose; on a read, the purpose its revealed fields were shown for when no reveal record follows it. */
  purpose: string | null;
  decision: 'allow' | 'deny';
  reason: string | null;
}

const emptyFields = () => ({ raw: new Set<string>(), masked: new Set<string>(), revealed: new Set<string>(), denied: new Set<string>() });
const sorted = (s: Set<string>) => [...s].sort();

/**
 * One `read` decision for the rows, and a `reveal` decision per purpose that
 * revealed something, unless the read already says all of it: a reveal that
 * covers every row of the read under one purpose, with no other reveal
 * beside it, is the read's own purpose and revealed fields, and a second
 * record with the same ids would only repeat them (a sales role's standing
 * reveal of names doubled every list read's record in the trail).
 */
export function summarize(projection: Projection, rows: RenderedRow[]): AccessDecision[] {
  const read = emptyFields();
  const reveals = new Map<string, { fields: Set<string>; records: Set<string> }>();
  // Every row was rendered with this projection: its cells are in the projection's order.
  for (let i = 0; i < projection.cells.length; i++) {
    const plan = projection.cells[i]!;
    for (const row of rows) {
      const cell = row.cells[i];
      if (!cell) continue;
      switch (cell.state) {
        case 'raw':
          read.raw.add(plan.field);
          break;
        case 'masked':
          read.masked.add(plan.field);
          break;
        case 'revealed': {
          read.revealed.add(plan.field);
          const purpose = plan.purpose ?? '';
          const r = reveals.get(purpose) ?? { fields: new Set<string>(), records: new Set<string>() };
          r.fields.add(plan.field);
          r.records.add(row.id);
          reveals.set(purpose, r);
          break;
        }
        case 'denied':
        case 'unavailable':
          read.denied.add(plan.field);
          break;
      }
    }
  }
  const folded = reveals.size === 1 ? [...reveals].find(([, r]) => r.records.size === rows.length)?.[0] : undefined;
  const out: AccessDecision[] = [
    {
      subject: projection.subject,
      action: 'read',
      recordIds: rows.map((r) => r.id),
      fields: { raw: sorted(read.raw), masked: sorted(read.masked), revealed: sorted(read.revealed), denied: sorted(read.denied) },
      purpose: folded || null,
      decision: 'allow',
      reason: null,
    },
  ];
  if (folded !== undefined) return out;
  for (const [purpose, r] of reveals) {
    out.push({
      subject: projection.subject,
      action: 'reveal',
      recordIds: [...r.records],
      fields: { raw: [], masked: [], revealed: sorted(r.fields), denied: [] },
      purpose: purpose || null,
      decision: 'allow',
      reason: null,
    });
  }
  return out;
}
