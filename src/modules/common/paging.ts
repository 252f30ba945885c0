import { BadUserInputError } from '../../errors.js';

/** Page sizes are capped so that no single request can pull the table. */
export function validatePageSize(first: number, max: number): void {
  if (!Number.isInteger(first) || first < 1 || first > max) {
    throw new BadUserInputError(`first must be between 1 and ${max}`, { argument: 'first', max });
  }
}
