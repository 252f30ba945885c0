/** A mistake on the command line: the CLIs print it with their usage and exit 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** `--name N`: a whole number in [min, max], or `fallback` when absent. */
export function integerOption(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const value = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got "${text}"`);
  }
  return value;
}
