/**
 * Masked renditions, computed once at write time and stored beside the
 * ciphertext so that masked reads never decrypt. The strategies are the
 * closed set named in policies/masking.yaml.
 */
export type MaskStrategy = 'last4' | 'email' | 'surname' | 'province_city' | 'age_band' | 'redact' | 'hmac';

export const REDACTED = '[redacted]';

/** `13812348000` → `*******8000`. */
export function maskLast4(value: string): string {
  const chars = [...value];
  if (chars.length <= 4) return '*'.repeat(chars.length);
  return '*'.repeat(chars.length - 4) + chars.slice(-4).join('');
}

/** `zhang.wei@example.cn` → `z***@example.cn`. */
export function maskEmail(value: string): string {
  const at = value.lastIndexOf('@');
  if (at <= 0) return REDACTED;
  return `${[...value][0]}***${value.slice(at)}`;
}

/** `张伟` → `张*`: the surname and one star per given-name character. */
export function maskSurname(value: string): string {
  const chars = [...value.trim()];
  if (chars.length === 0) return '';
  return chars[0] + '*'.repeat(Math.max(1, chars.length - 1));
}

/** An address becomes only its province and city. */
export function maskAddress(province: string, city: string): string {
  return province === city ? province : `${province}${city}`;
}

const bands: Array<[number, string]> = [
  [18, 'under 18'],
  [25, '18-24'],
  [35, '25-34'],
  [45, '35-44'],
  [55, '45-54'],
  [65, '55-64'],
];

/** Birth date (YYYY-MM-DD) → age band as of `asOf`. */
export function ageBand(birthDate: string, asOf: Date = new Date()): string {
  const birth = new Date(`${birthDate}T00:00:00Z`);
  if (Number.isNaN(birth.getTime())) return REDACTED;
  let age = asOf.getUTCFullYear() - birth.getUTCFullYear();
  const beforeBirthday =
    asOf.getUTCMonth() < birth.getUTCMonth() ||
    (asOf.getUTCMonth() === birth.getUTCMonth() && asOf.getUTCDate() < birth.getUTCDate());
  if (beforeBirthday) age -= 1;
  for (const [limit, label] of bands) if (age < limit) return label;
  return '65+';
}
