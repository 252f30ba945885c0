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
  /**
   * A reveal's declared purpose; on a read, the purpose its revealed fields were shown for, those that no reveal
   * record after it names for the same rows (null: shown without a purpose).
   */
  purpose: string | null;
  decision: 'allow' | 'deny';
  reason: string | null;
}

const emptyFields = () => ({ raw: new Set<string>(), masked: new Set<string>(), revealed: new Set<string>(), denied: new Set<string>() });
const sorted = (s: Set<string>) => [...s].sort();

/**
 * One `read` decision for the rows, and a `reveal` decision per purpose that
 * revealed something, unless the read already says it. A reveal without a
 * purpose that covers every row of the read is the read itself (its rows, its
 * revealed fields, no purpose), whatever other reveals stand beside it; a
 * second record with the same ids would only repeat it (a sales role's
 * standing reveal of names doubled every list read's record in the trail, and
 * tripled a point read that also revealed a phone for a purpose). Failing
 * that, a lone reveal under a purpose that covers every row is the read's own
 * purpose and revealed fields.
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
  const everyRow = (r: { records: Set<string> }) => r.records.size === rows.length;
  let purpose: string | null = null;
  const unstated = reveals.get('');
  if (unstated && everyRow(unstated)) {
    reveals.delete('');
  } else if (reveals.size === 1) {
    const [only, r] = [...reveals][0]!;
    if (everyRow(r)) {
      purpose = only || null;
      reveals.clear();
    }
  }
  const out: AccessDecision[] = [
    {
      subject: projection.subject,
      action: 'read',
      recordIds: rows.map((r) => r.id),
      fields: { raw: sorted(read.raw), masked: sorted(read.masked), revealed: sorted(read.revealed), denied: sorted(read.denied) },
      purpose,
      decision: 'allow',
      reason: null,
    },
  ];
  for (const [declared, r] of reveals) {
    out.push({
      subject: projection.subject,
      action: 'reveal',
      recordIds: [...r.records],
      fields: { raw: [], masked: [], revealed: sorted(r.fields), denied: [] },
      purpose: declared || null,
      decision: 'allow',
      reason: null,
    });
  }
  return out;
}
