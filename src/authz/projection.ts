import { sql, type SQL } from 'drizzle-orm';
import type { PgColumn } from 'drizzle-orm/pg-core';
import { ForbiddenError } from '../errors.js';
import { maskStrategy, type PolicyBundle } from './policy/bundle.js';
import { RequestAuthz, type Grant } from './request-authz.js';
import { Lru } from './statements.js';
import { maskInSql, storageOf } from './storage.js';
import { subjects, type ScalarField, type SubjectName } from './subjects.js';

/** Key of a rendered cell: the same field may be asked with several purposes (aliases). */
export const cellKey = (field: string, purpose: string | undefined) => `${field}|${purpose ?? ''}`;

/** How one (field, purpose) cell of every row is decided and where its value sits in the result row. */
export interface CellPlan {
  field: string;
  purpose: string | undefined;
  /** cellKey(field, purpose), computed once. */
  key: string;
  /** Result column holding the value (masked or raw), or the ciphertext when `encrypted`. */
  valueKey: string;
  /** Result column with the masked rendition, when the raw value comes from decryption. */
  maskedKey?: string;
  /** Boolean result column: may the row's field be read at all (absent = always). */
  readFlag?: string;
  /** Boolean result column: is the raw value revealed (absent = never). */
  revealFlag?: string;
  maskable: boolean;
  encrypted?: { aad: string };
  dateTime: boolean;
  /** For the in-memory re-check: the grant behind each flag. */
  readGrant: Grant;
  revealGrant: Grant;
  /**
   * Conditional grants: where rows alike keep CASL's answer (cells whose grants
   * have the same action and key share a slot, and so the answer).
   */
  readSlot?: number;
  revealSlot?: number;
}

export interface Projection {
  subject: SubjectName;
  select: Array<[string, SQL]>;
  cells: CellPlan[];
  /** Position in `cells` of each cell key. */
  cellIndex: ReadonlyMap<string, number>;
  /** Plain attributes selected so that every row can be re-checked with ability.can. */
  attrs: string[];
  /** Result column of each attribute (same order as attrs). */
  attrColumns: string[];
  /**
   * The attributes the rules' conditions read, when `id` is not one of them: every
   * ability.can of a row then depends on these values only, and rows that share them
   * share the answer. Undefined when a condition reads the id (each row is asked alone).
   */
  decisionAttrs?: string[];
  /** Result column holding the wrapped data key, when some cell may be revealed from ciphertext. */
  wrappedKey?: { key: string; kekId: string; anyReveal: SQL[] };
}

export type Requested = Map<string, Set<string | undefined>>;

/** Planned projections per bundle, shared across requests and principals with the same rules (treat as read-only). */
const plans = new WeakMap<PolicyBundle, Lru<Projection>>();
const PLAN_CACHE = 500;

/**
 * Plans the SELECT list for the requested fields: refuses up front a field no rule can ever grant.
 * The plan is a function of the caller's rules (after interpolation), the subject and the
 * selection, and is cached under exactly those; it holds SQL and column names, never a row.
 */
export function planProjection(authz: RequestAuthz, subject: SubjectName, requested: Requested): Projection {
  const denied = [...requested.keys()].filter((f) => !authz.canEver('read', subject, f) && !anyReveal(authz, subject, f, requested));
  if (denied.length > 0) throw ForbiddenError.fields(subject, denied);
  let cache = plans.get(authz.bundle);
  if (!cache) plans.set(authz.bundle, (cache = new Lru<Projection>(PLAN_CACHE)));
  const purposes = new Set<string | undefined>();
  for (const set of requested.values()) for (const purpose of set) purposes.add(purpose);
  const selection = JSON.stringify([...requested].map(([field, set]) => [field, [...set].map((p) => p ?? null)]));
  const key = `${subject}\n${authz.fingerprint(purposes)}\n${selection}`;
  let projection = cache.get(key);
  if (!projection) {
    projection = buildProjection(authz, subject, requested);
    cache.set(key, projection);
  }
  return projection;
}

function buildProjection(authz: RequestAuthz, subject: SubjectName, requested: Requested): Projection {
  const spec = subjects[subject];
  const p = new Builder(authz, subject);
  for (const [field, purposes] of requested) {
    const fieldSpec = spec.fields[field as keyof typeof spec.fields] as ScalarField | { kind: 'relation' } | undefined;
    if (!fieldSpec || fieldSpec.kind !== 'scalar') continue;
    for (const purpose of purposes) p.addCell(field, fieldSpec, purpose);
  }
  return p.finish();
}

function anyReveal(authz: RequestAuthz, subject: SubjectName, field: string, requested: Requested): boolean {
  return [...(requested.get(field) ?? [])].some((purpose) => authz.canEver('reveal', subject, field, purpose));
}

class Builder {
  private readonly select: Array<[string, SQL]> = [];
  private readonly flags = new Map<string, string>();
  private readonly slots = new Map<string, number>();
  private readonly cells: CellPlan[] = [];
  private readonly revealConds: SQL[] = [];
  /** What the read and reveal conditions refer to (attrs is these and the id). */
  private readonly conditionAttrs = new Set<string>();
  private n = 0;

  constructor(
    private readonly authz: RequestAuthz,
    private readonly subject: SubjectName,
  ) {
    for (const a of authz.conditionFields('read', subject)) this.conditionAttrs.add(a);
  }

  private flag(grant: Grant): string | undefined {
    if (grant.kind !== 'conditional') return undefined;
    let key = this.flags.get(grant.key);
    if (!key) {
      key = `f${this.flags.size}`;
      this.flags.set(grant.key, key);
      this.select.push([key, sql`(${grant.where})`]);
    }
    return key;
  }

  private slot(action: 'read' | 'reveal', grant: Grant): number | undefined {
    if (grant.kind !== 'conditional') return undefined;
    const key = `${action}\n${grant.key}`;
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = this.slots.size;
      this.slots.set(key, slot);
    }
    return slot;
  }

  addCell(field: string, spec: ScalarField, purpose: string | undefined): void {
    const readGrant = this.authz.grant('read', this.subject, field);
    const storage = storageOf(this.subject, field);
    const strategy = maskStrategy(this.authz.bundle, this.subject, field);
    const maskable = strategy !== undefined;
    const revealGrant: Grant = maskable ? this.authz.grant('reveal', this.subject, field, purpose) : { kind: 'never' };
    for (const a of this.authz.conditionFields('reveal', this.subject, purpose)) this.conditionAttrs.add(a);
    const valueKey = `v${this.n++}`;
    const readFlag = this.flag(readGrant);
    const revealFlag = this.flag(revealGrant);
    const read = RequestAuthz.toSql(readGrant);
    const reveal = RequestAuthz.toSql(revealGrant);
    const dateTime = spec.type === 'date';
    const cell: CellPlan = { field, purpose, key: cellKey(field, purpose), valueKey, maskable, dateTime, readGrant, revealGrant };
    if (readFlag) cell.readFlag = readFlag;
    if (revealFlag) cell.revealFlag = revealFlag;
    const readSlot = this.slot('read', readGrant);
    const revealSlot = this.slot('reveal', revealGrant);
    if (readSlot !== undefined) cell.readSlot = readSlot;
    if (revealSlot !== undefined) cell.revealSlot = revealSlot;

    if (storage?.kind === 'encrypted') {
      cell.maskedKey = `m${this.n++}`;
      cell.encrypted = { aad: storage.aad };
      this.select.push([valueKey, sql`CASE WHEN ${reveal} THEN ${storage.enc} END`]);
      this.select.push([cell.maskedKey, sql`CASE WHEN ${read} THEN ${storage.masked} END`]);
      if (revealGrant.kind !== 'never') this.revealConds.push(reveal);
    } else if (maskable) {
      const raw = storage?.kind === 'stored' ? storage.raw : spec.column!;
      const masked = storage?.kind === 'stored' ? storage.masked : maskInSql(strategy, raw)!;
      this.select.push([valueKey, sql`CASE WHEN ${reveal} THEN ${raw} WHEN ${read} THEN ${masked} END`]);
    } else {
      this.select.push([valueKey, plainValue(spec, read, readGrant)]);
    }
    this.cells.push(cell);
  }

  finish(): Projection {
    const spec = subjects[this.subject];
    const attrs = [...new Set(['id', ...this.conditionAttrs])];
    for (const a of attrs) {
      const f = spec.fields[a as keyof typeof spec.fields] as ScalarField | undefined;
      if (f?.column) this.select.push([`a_${a}`, f.column as unknown as SQL]);
    }
    const projection: Projection = {
      subject: this.subject,
      select: this.select,
      cells: this.cells,
      cellIndex: new Map(this.cells.map((c, i) => [c.key, i])),
      attrs,
      attrColumns: attrs.map((a) => `a_${a}`),
    };
    if (!this.conditionAttrs.has('id')) projection.decisionAttrs = [...this.conditionAttrs];
    if (this.revealConds.length > 0) {
      projection.wrappedKey = { key: 'wk', kekId: 'wk_id', anyReveal: this.revealConds };
    }
    return projection;
  }
}

function plainValue(spec: ScalarField, read: SQL, grant: Grant): SQL {
  const column = spec.column as PgColumn;
  const value =
    spec.type === 'date'
      ? sql`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`
      : spec.type === 'number'
        ? sql`${column}::text`
        : sql`${column}`;
  return grant.kind === 'always' ? value : sql`CASE WHEN ${read} THEN ${value} END`;
}
