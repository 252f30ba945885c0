import { sql, type SQL } from 'drizzle-orm';
import { customers } from '../../db/schema/index.js';
import { REDACTED } from '../masks.js';

/**
 * The closed vocabulary of policies/datasets/: which customer attributes a
 * dataset may draw on and how each is minimized, how a quasi-identifier is
 * generalized further, and which per-customer aggregates exist. A dataset
 * file can only combine these; anything else is a load error. Direct
 * identifiers (name, phone, email, id number, address, exact birth date,
 * internal id) have no entry that would let them out.
 */
export type ColumnType = 'string' | 'int';

export interface SourceTransform {
  /** The value computed in SQL from the stored row: only plain or masked columns, never ciphertext. */
  sql: SQL;
  /** Finishes the SQL value in memory (e.g. province → region); null stays null. */
  finish?: (value: string) => string;
  description: string;
}

/** Customer attribute → transform name → how. `pseudonym` is handled apart (keyed HMAC of the id). */
export const sourceTransforms: Readonly<Record<string, Readonly<Record<string, SourceTransform>>>> = {
  birthDate: {
    age_band: { sql: sql`${customers.birthDateMasked}`, description: 'age band, as of the last write (birth date never leaves)' },
  },
  gender: { as_is: { sql: sql`${customers.gender}`, description: 'gender' } },
  province: {
    as_is: { sql: sql`${customers.province}`, description: 'province' },
    region: { sql: sql`${customers.province}`, finish: regionOf, description: 'region of China (华东, 华北, …)' },
  },
  tier: { as_is: { sql: sql`${customers.tier}`, description: 'loyalty tier' } },
  segment: { as_is: { sql: sql`${customers.segment}`, description: 'market segment' } },
  createdAt: {
    month: { sql: sql`to_char(${customers.createdAt} at time zone 'UTC', 'YYYY-MM')`, description: 'month the customer joined' },
    year: { sql: sql`to_char(${customers.createdAt} at time zone 'UTC', 'YYYY')`, description: 'year the customer joined' },
  },
};

/** Customer attributes a dataset may never name, whatever the transform. */
export const directIdentifiers = ['name', 'phone', 'email', 'idNumber', 'address', 'ownerId', 'department', 'updatedAt'] as const;

export const PSEUDONYM = 'pseudonym';
export const SUPPRESSED = '*';

/** Further generalization of a quasi-identifier, applied to rows whose group is smaller than k. */
export interface Generalizer {
  /** Transforms whose values this generalizer understands. */
  appliesTo: readonly string[];
  apply: (value: string) => string;
}

export const generalizers: Readonly<Record<string, Generalizer>> = {
  region: { appliesTo: ['as_is:province'], apply: regionOf },
  age_band_wide: { appliesTo: ['age_band:birthDate'], apply: wideAgeBand },
  year: { appliesTo: ['month:createdAt'], apply: (v) => v.slice(0, 4) },
  suppress: { appliesTo: ['*'], apply: () => SUPPRESSED },
};

export interface Aggregate {
  type: ColumnType;
  description: string;
  /** From the per-customer order summary row (see aggregateSql). */
  value: (s: OrderSummary) => string | number | null;
}

export interface OrderSummary {
  orderCount: number;
  spend: number;
  topChannel: string | null;
  channelCount: number;
  firstOrder: string | null;
  lastOrder: string | null;
}

export const aggregates: Readonly<Record<string, Aggregate>> = {
  order_count: { type: 'int', description: 'number of orders', value: (s) => s.orderCount },
  spend_band: { type: 'string', description: 'total spend, banded (CNY)', value: (s) => spendBand(s.spend) },
  top_channel: { type: 'string', description: 'the channel most orders came through', value: (s) => s.topChannel },
  channel_count: { type: 'int', description: 'how many channels the customer ordered through', value: (s) => s.channelCount },
  first_order_month: { type: 'string', description: 'month of the first order', value: (s) => s.firstOrder },
  last_order_month: { type: 'string', description: 'month of the latest order', value: (s) => s.lastOrder },
};

const regions: Readonly<Record<string, string>> = Object.fromEntries(
  Object.entries({
    华北: ['北京市', '天津市', '河北省', '山西省', '内蒙古自治区'],
    东北: ['辽宁省', '吉林省', '黑龙江省'],
    华东: ['上海市', '江苏省', '浙江省', '安徽省', '福建省', '江西省', '山东省', '台湾省'],
    华中: ['河南省', '湖北省', '湖南省'],
    华南: ['广东省', '广西壮族自治区', '海南省', '香港特别行政区', '澳门特别行政区'],
    西南: ['重庆市', '四川省', '贵州省', '云南省', '西藏自治区'],
    西北: ['陕西省', '甘肃省', '青海省', '宁夏回族自治区', '新疆维吾尔自治区'],
  }).flatMap(([region, provinces]) => provinces.map((p) => [p, region])),
);

/** Province → one of China's seven regions; anything unknown is suppressed rather than passed through. */
export function regionOf(province: string): string {
  return Object.hasOwn(regions, province) ? regions[province]! : SUPPRESSED;
}

const wideBands: Readonly<Record<string, string>> = {
  'under 18': 'under 25',
  '18-24': 'under 25',
  '25-34': '25-44',
  '35-44': '25-44',
  '45-54': '45-64',
  '55-64': '45-64',
  '65+': '65+',
};

export function wideAgeBand(band: string): string {
  return Object.hasOwn(wideBands, band) ? wideBands[band]! : SUPPRESSED;
}

const spendBands: Array<[number, string]> = [
  [0.005, '0'],
  [1_000, '<1k'],
  [5_000, '1k-5k'],
  [20_000, '5k-20k'],
  [100_000, '20k-100k'],
];

export function spendBand(total: number): string {
  for (const [limit, label] of spendBands) if (total < limit) return label;
  return '100k+';
}

/** A stored masked value that carries nothing (e.g. an unparsable birth date) counts as unknown. */
export function cleanStored(value: string | null): string | null {
  return value === null || value === REDACTED ? null : value;
}
