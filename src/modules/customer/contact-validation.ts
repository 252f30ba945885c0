import { normalizePhone } from '../../crypto/envelope.js';

/** Mainland China mobile numbers: 11 digits starting 13–19 (an optional +86 prefix is accepted). */
export function isValidPhone(value: string): boolean {
  return value.length <= 32 && /^1[3-9]\d{9}$/.test(normalizePhone(value));
}

/** A pragmatic email check: one @, a dotted domain, no spaces, bounded length. */
export function isValidEmail(value: string): boolean {
  return value.length <= 254 && /^[^\s@]+@[^\s@]+\.[^\s@]{2,}$/.test(value.trim());
}

/** Addresses are free text, bounded in length and without control characters. */
export function isValidAddress(value: string): boolean {
  const trimmed = value.trim();
  return trimmed.length >= 4 && trimmed.length <= 200 && !/[\u0000-\u001f]/.test(trimmed);
}
