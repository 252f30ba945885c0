/**
 * In-process micro-benchmark of the enforcement layer's per-row work, without
 * a database or a server: one S1-shaped read (a sales manager, 50 customers of
 * the department, S1's ten fields) fed from memory through `readRows` (the
 * in-memory re-check, masking decisions, the audit summary) and `toNode` (the
 * objects graphql-js resolves). Steadier than a bench window on a shared
 * machine; to compare two checkouts, run it in each:
 *
 *   npx tsx bench/render-micro.ts
 */
import { loadBundle } from '../src/authz/policy/bundle.js';
import type { Principal } from '../src/authz/principal.js';
import { planProjection, type Requested } from '../src/authz/projection.js';
import { readRows, type ReadContext } from '../src/authz/reader.js';
import { RequestAuthz } from '../src/authz/request-authz.js';
import type { Row } from '../src/db/execute.js';
import { toNode } from '../src/graphql/render.js';
import { repoRoot } from './servers.js';

const ROWS = 50;
const READS = 4000;
const ROUNDS = 6;

const bundle = await loadBundle(`${repoRoot}/policies`);
const manager: Principal = { id: 'u-mgr-1', displayName: 'u-mgr-1', roles: ['sales_manager'], department: 'east', region: null, status: 'active' };
const authz = new RequestAuthz(bundle, manager);
const fields = ['id', 'name', 'phone', 'email', 'city', 'province', 'tier', 'segment', 'createdAt', 'ownerId'];
const requested: Requested = new Map(fields.map((f) => [f, new Set([undefined])]));
const projection = planProjection(authz, 'Customer', requested);

/** Rows as SQL returns them for the manager's own department: every flag true, values filled, owners varied. */
const rows: Row[] = Array.from({ length: ROWS }, (_, i) => {
  const row: Row = {};
  for (const [name] of projection.select) row[name] = name.startsWith('f') ? true : `${name} of row ${i}`;
  for (const [k, attr] of projection.attrs.entries()) {
    row[projection.attrColumns[k]!] = attr === 'id' ? `00000000-0000-4000-8000-${String(i).padStart(12, '0')}` : attr === 'department' ? 'east' : `u-rep-${i % 3}`;
  }
  return row;
});

const ctx: ReadContext = {
  db: undefined as never,
  keyring: undefined as never,
  authz,
  onFault: () => {
    throw new Error('the re-check disagreed with rows built to be allowed');
  },
  observer: { enforce: (_subject, run) => run({ query: () => Promise.resolve(rows.map((r) => ({ ...r }))), decided: () => undefined }) },
};

const perRound: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const started = performance.now();
  for (let i = 0; i < READS; i++) {
    const out = await readRows(ctx, { projection, where: [], orderBy: [], shape: { key: 'render-micro', values: {} } });
    if (out.length !== ROWS) throw new Error(`expected ${ROWS} rows, got ${out.length}`);
    for (const row of out) toNode('Customer', row);
  }
  perRound.push(((performance.now() - started) / READS) * 1000);
}
// The first rounds include V8's warm-up: the median of the later ones is the figure.
const settled = perRound.slice(2).sort((a, b) => a - b);
console.log(`rounds (µs per ${ROWS}-row read): ${perRound.map((us) => us.toFixed(1)).join(' / ')}`);
console.log(`median after warm-up: ${settled[Math.floor(settled.length / 2)]!.toFixed(1)} µs per read`);
