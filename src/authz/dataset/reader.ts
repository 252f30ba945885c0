import { createHmac } from 'node:crypto';
import { sql, type SQL } from 'drizzle-orm';
import { consents, customers, orders } from '../../db/schema/index.js';
import type { Row } from '../../db/execute.js';
import type { AccessDecision } from '../decision.js';
import type { DatasetDef } from '../policy/types.js';
import { planRelease, quasiColumns, type Group, type QuasiValues, type ReleasePlan } from './anonymity.js';
import { aggregates, cleanStored, type OrderSummary } from './vocabulary.js';

/** One released row: column name → value, in the dataset's column order. */
export type DatasetRow = Record<string, string | number | null>;

export interface DatasetPage {
  rows: DatasetRow[];
  /** Internal ids of the released rows: for the audit trail only, never part of the release. */
  customerIds: string[];
  /** Keyset position after the last row read (released or suppressed), to continue from. */
  lastId: string | null;
  done: boolean;
}

export type RunQuery = (statement: SQL) => Promise<Row[]>;

/**
 * Reads a minimized dataset: consent filter and order aggregates in SQL,
 * quasi-identifiers generalized or suppressed by the release plan,
 * pseudonymous ids keyed per dataset and purpose. Only plain and masked
 * columns are selected: nothing here ever decrypts.
 */
export class DatasetReader {
  private readonly quasi;
  private readonly needsOrders: boolean;

  constructor(
    readonly def: DatasetDef,
    private readonly pseudonymKey: Buffer,
  ) {
    this.quasi = quasiColumns(def);
    this.needsOrders = def.columns.some((c) => c.kind === 'aggregate');
  }

  /** Counts every level-0 quasi-identifier group of the consenting population and plans the release. */
  async plan(query: RunQuery): Promise<ReleasePlan> {
    const exprs = this.quasi.map((q, i) => sql`${q.transform.sql} as ${sql.identifier(`q${i}`)}`);
    const groupBy = this.quasi.map((_, i) => sql.identifier(`q${i}`));
    const statement = sql`select ${sql.join([...exprs, sql`count(*)::int as n`], sql`, `)} from ${customers} where ${this.consentFilter()}${
      groupBy.length > 0 ? sql` group by ${sql.join(groupBy, sql`, `)}` : sql``
    }`;
    const rows = await query(statement);
    // Several raw values can finish to the same level-0 value (e.g. province → region): merge them.
    const merged = new Map<string, Group>();
    for (const row of rows) {
      const values = this.finish(row);
      const key = JSON.stringify(values);
      const group = merged.get(key) ?? { values, count: 0 };
      group.count += Number(row.n);
      merged.set(key, group);
    }
    return planRelease(this.def, [...merged.values()]);
  }

  /** Up to `limit` released rows after `afterId` (keyset on the internal id; suppressed rows skipped). */
  async page(query: RunQuery, plan: ReleasePlan, opts: { afterId: string | null; limit: number }): Promise<DatasetPage> {
    const out: DatasetPage = { rows: [], customerIds: [], lastId: opts.afterId, done: false };
    // Suppressed rows are skipped in memory, so a batch may release fewer rows than it read: read on until full.
    while (out.rows.length < opts.limit) {
      const want = opts.limit - out.rows.length;
      const batch = Math.min(Math.max(want + (want >> 2), 16), 5_000);
      const rows = await query(this.rowsQuery(out.lastId, batch));
      let consumed = 0;
      for (const row of rows) {
        if (out.rows.length === opts.limit) break;
        consumed++;
        out.lastId = String(row.id);
        const placed = plan.placement(this.finish(row));
        if (placed.level === 'suppressed') continue;
        out.rows.push(this.render(row, placed.values));
        out.customerIds.push(String(row.id));
      }
      if (rows.length < batch && consumed === rows.length) {
        out.done = true;
        break;
      }
    }
    return out;
  }

  /** The keyed pseudonym of a customer in this dataset: stable across pulls, unlinkable across datasets. */
  pseudonym(customerId: string): string {
    return createHmac('sha256', this.pseudonymKey)
      .update(`custos/dataset-pseudonym/v1\0${this.def.name}\0${this.def.purpose}\0${customerId}`)
      .digest('hex')
      .slice(0, 32);
  }

  private finish(row: Row): QuasiValues {
    return this.quasi.map((q, i) => {
      const raw = cleanStored((row[`q${i}`] as string | null | undefined) ?? null);
      return raw === null ? null : q.transform.finish ? q.transform.finish(raw) : raw;
    });
  }

  private render(row: Row, quasi: QuasiValues): DatasetRow {
    const out: DatasetRow = {};
    let qi = 0;
    const summary = this.needsOrders ? orderSummary(row) : undefined;
    for (const column of this.def.columns) {
      switch (column.kind) {
        case 'pseudonym':
          out[column.name] = this.pseudonym(String(row.id));
          break;
        case 'attribute':
          out[column.name] = quasi[qi++] ?? null;
          break;
        case 'aggregate':
          out[column.name] = aggregates[column.aggregate]!.value(summary!);
          break;
      }
    }
    return out;
  }

  private rowsQuery(afterId: string | null, limit: number): SQL {
    const exprs = this.quasi.map((q, i) => sql`${q.transform.sql} as ${sql.identifier(`q${i}`)}`);
    const where = [this.consentFilter()];
    if (afterId !== null) where.push(sql`${customers.id} > ${afterId}::uuid`);
    const select: SQL[] = [sql`${customers.id} as id`, ...exprs];
    let from = sql`${customers}`;
    if (this.needsOrders) {
      select.push(sql`o.n, o.spend, o.top, o.channels, o.first_month, o.last_month`);
      from = sql`${from} left join lateral (
        select count(*)::int as n, coalesce(sum(${orders.amount}), 0)::float8 as spend,
               mode() within group (order by ${orders.channel}) as top,
               count(distinct ${orders.channel})::int as channels,
               to_char(min(${orders.placedAt}) at time zone 'UTC', 'YYYY-MM') as first_month,
               to_char(max(${orders.placedAt}) at time zone 'UTC', 'YYYY-MM') as last_month
        from ${orders} where ${orders.customerId} = ${customers.id}) o on true`;
    }
    return sql`select ${sql.join(select, sql`, `)} from ${from} where ${sql.join(where, sql` and `)} order by ${customers.id} limit ${limit}`;
  }

  /** Consent for the dataset's purpose, as the dataset file requires it. */
  private consentFilter(): SQL {
    const active = sql`exists (select 1 from ${consents} where ${consents.customerId} = ${customers.id} and ${consents.purpose} = ${this.def.purpose} and ${consents.withdrawnAt} is null)`;
    if (this.def.consent === 'required') return active;
    const withdrawn = sql`exists (select 1 from ${consents} where ${consents.customerId} = ${customers.id} and ${consents.purpose} = ${this.def.purpose} and ${consents.withdrawnAt} is not null)`;
    return sql`(${active} or not ${withdrawn})`;
  }
}

function orderSummary(row: Row): OrderSummary {
  return {
    orderCount: Number(row.n ?? 0),
    spend: Number(row.spend ?? 0),
    topChannel: (row.top as string | null) ?? null,
    channelCount: Number(row.channels ?? 0),
    firstOrder: (row.first_month as string | null) ?? null,
    lastOrder: (row.last_month as string | null) ?? null,
  };
}

/** The audit decision of one released batch: which customers' data left, as which columns, for what. */
export function datasetDecision(def: DatasetDef, page: Pick<DatasetPage, 'customerIds'>, action: 'read' | 'export', reason: string): AccessDecision {
  return {
    subject: 'Dataset',
    action,
    recordIds: page.customerIds,
    fields: { raw: [], masked: def.columns.map((c) => c.name), revealed: [], denied: [] },
    purpose: def.purpose,
    decision: 'allow',
    reason,
  };
}
