import type { CustomerPlain } from '../../crypto/customer-record.js';
import {
  DEPARTMENTS,
  EMAIL_DOMAINS,
  ESTATES,
  GIVEN_F,
  GIVEN_M,
  MOBILE_PREFIXES,
  PROVINCES,
  STREETS,
  SURNAMES,
  districtSuffixes,
  type Province,
} from './china.js';
import { int, mix, permuteDigits, pick, Stream, streamFor, uuidFor, weighted, type Rng } from './random.js';

export const DEFAULT_SEED = 20240917;
/** Phone numbers and email local parts are unique by construction up to this many customers. */
export const MAX_CUSTOMERS = 1_000_000;
export const DAY_MS = 86_400_000;

/**
 * Ages are drawn against a fixed date, not the clock, so a customer's birth
 * date and id number are the same whatever day the seed runs.
 */
const BIRTH_REFERENCE = Date.UTC(2025, 6, 1);

/** A sales rep who can own customers; a customer's department is its owner's. */
export interface SeedOwner {
  id: string;
  department: string;
}

/** Everything the generator depends on: same plan and index, same customer. */
export interface SeedPlan {
  seed: number;
  owners: readonly SeedOwner[];
  /** Timestamps (created, placed, occurred) lie before this instant; personal values ignore it. */
  asOf: Date;
}

export interface Person {
  name: string;
  pinyin: { surname: string; given: string };
}

const WEIGHTED_SURNAMES = SURNAMES.map(([s, p, w]) => [[s, p] as const, w] as const);

export function personName(rng: Rng, gender: 'F' | 'M'): Person {
  const [surname, surnamePinyin] = weighted(rng, WEIGHTED_SURNAMES);
  const chars = gender === 'F' ? GIVEN_F : GIVEN_M;
  const parts = rng() < 0.3 ? [pick(rng, chars)] : [pick(rng, chars), pick(rng, chars)];
  return {
    name: surname + parts.map(([c]) => c).join(''),
    pinyin: { surname: surnamePinyin, given: parts.map(([, p]) => p).join('') },
  };
}

/** GB 11643 check character: ISO 7064 MOD 11-2 over the first 17 digits. */
export function idCheckDigit(first17: string): string {
  const weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
  const sum = weights.reduce((acc, w, i) => acc + w * Number(first17[i]), 0);
  return '10X98765432'[sum % 11]!;
}

/** An 18-digit resident id: region, birth date, a sequence whose parity is the gender, check character. */
export function idNumber(rng: Rng, regionCode: string, birthDate: string, gender: 'F' | 'M'): string {
  const sequence = 2 * int(rng, 0, 499) + (gender === 'M' ? 1 : 0);
  const first17 = regionCode + birthDate.replaceAll('-', '') + String(sequence).padStart(3, '0');
  return first17 + idCheckDigit(first17);
}

/** Ages 18–80 (as of mid-2025), most customers between 25 and 55. */
function birthDateOf(rng: Rng): string {
  const age = 18 + Math.floor(((rng() + rng()) / 2) * 63);
  const birth = BIRTH_REFERENCE - age * 365.25 * DAY_MS - int(rng, 0, 364) * DAY_MS;
  return new Date(birth).toISOString().slice(0, 10);
}

/** Mostly in the owner's sales area, sometimes anywhere (customers move, reps keep them). */
const PROVINCES_BY_DEPARTMENT = new Map(DEPARTMENTS.map((d) => [d as string, PROVINCES.filter((p) => p.department === d)]));

function homeOf(rng: Rng, department: string) {
  const local = PROVINCES_BY_DEPARTMENT.get(department) ?? [];
  const province: Province = local.length > 0 && rng() < 0.8 ? pick(rng, local) : pick(rng, PROVINCES);
  const [city, cityCode] = pick(rng, province.cities);
  return { province: province.name, city, regionCode: cityCode + pick(rng, districtSuffixes(cityCode)) };
}

function addressOf(rng: Rng, province: string, city: string): string {
  const place = province === city ? city : province + city;
  const floor = int(rng, 1, 33);
  const room = `${floor}${String(int(rng, 1, 4)).padStart(2, '0')}`;
  return `${place}${pick(rng, STREETS)}${int(rng, 1, 999)}号${pick(rng, ESTATES)}${int(rng, 1, 30)}栋${int(rng, 1, 6)}单元${room}室`;
}

function phoneOf(rng: Rng, seed: number, index: number): string {
  const subscriber = permuteDigits(index, 4, mix(seed, 11));
  return pick(rng, MOBILE_PREFIXES) + String(subscriber).padStart(8, '0');
}

/** QQ numbers or pinyin with a per-customer number; the number makes every address unique. */
function emailOf(rng: Rng, seed: number, index: number, person: Person): string {
  if (rng() < 0.35) return `${1_000_000_000 + permuteDigits(index, 5, mix(seed, 12))}@qq.com`;
  const digits = String(permuteDigits(index, 3, mix(seed, 13))).padStart(6, '0');
  const { surname, given } = person.pinyin;
  const local = rng() < 0.5 ? `${surname}${given}${digits}` : `${surname}_${given}${digits}`;
  return `${local}@${weighted(rng, EMAIL_DOMAINS)}`;
}

const TIERS = [['bronze', 50], ['silver', 30], ['gold', 15], ['platinum', 5]] as const;
const SEGMENTS = [['retail', 72], ['smb', 20], ['enterprise', 8]] as const;

/** The plain values of customer `index`: a pure function of (plan, index). */
export function customerAt(plan: SeedPlan, index: number): CustomerPlain {
  if (!Number.isInteger(index) || index < 0 || index >= MAX_CUSTOMERS) {
    throw new RangeError(`customer index must be an integer in [0, ${MAX_CUSTOMERS})`);
  }
  const rng = streamFor(plan.seed, Stream.customer, index);
  const owner = pick(rng, plan.owners);
  const gender = rng() < 0.5 ? 'F' : 'M';
  const person = personName(rng, gender);
  const home = homeOf(rng, owner.department);
  const birthDate = birthDateOf(rng);
  const createdAt = new Date(plan.asOf.getTime() - int(rng, 1, 5 * 365) * DAY_MS - int(rng, 0, DAY_MS - 1));
  const updatedAt = new Date(Math.min(plan.asOf.getTime(), createdAt.getTime() + int(rng, 0, 400) * DAY_MS));
  return {
    id: uuidFor(plan.seed, 'customer', index),
    name: person.name,
    phone: phoneOf(rng, plan.seed, index),
    email: rng() < 0.08 ? null : emailOf(rng, plan.seed, index, person),
    address: rng() < 0.03 ? null : addressOf(rng, home.province, home.city),
    province: home.province,
    city: home.city,
    idNumber: rng() < 0.1 ? null : idNumber(rng, home.regionCode, birthDate, gender),
    birthDate,
    gender,
    tier: weighted(rng, TIERS),
    segment: weighted(rng, SEGMENTS),
    ownerId: owner.id,
    department: owner.department,
    createdAt,
    updatedAt,
  };
}

/** Extra sales reps for big seeds so no single rep owns tens of thousands of customers. */
export function syntheticReps(seed: number, count: number) {
  return Array.from({ length: count }, (_, k) => {
    const rng = streamFor(seed, Stream.rep, k);
    const department = DEPARTMENTS[k % DEPARTMENTS.length]!;
    return {
      id: `u-rep-${1001 + k}`,
      displayName: personName(rng, rng() < 0.5 ? 'F' : 'M').name,
      roles: ['sales_rep'],
      department,
      // Same naming as the demo principals' regions.
      region: `${department}-china`,
      status: 'active' as const,
    };
  });
}
