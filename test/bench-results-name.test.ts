import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { unusedResultName } from '../bench/report.js';

describe('the name a bench result is written under', () => {
  it('is the wanted name, else the first of name-2, name-3, … with no file of any of the extensions', () => {
    fc.assert(
      fc.property(
        // For the wanted name and its next suffixes: whether a .json, a .md, both or neither exist.
        fc.array(fc.constantFrom('none', 'json', 'md', 'both'), { maxLength: 6 }),
        (taken) => {
          const dir = mkdtempSync(join(tmpdir(), 'bench-results-'));
          try {
            taken.forEach((kind, i) => {
              const name = i === 0 ? '2026-12-01-soak' : `2026-12-01-soak-${i + 1}`;
              if (kind === 'json' || kind === 'both') writeFileSync(join(dir, `${name}.json`), '{}');
              if (kind === 'md' || kind === 'both') writeFileSync(join(dir, `${name}.md`), '');
            });
            const first = taken.findIndex((kind) => kind === 'none');
            const n = first === -1 ? taken.length : first;
            expect(unusedResultName(dir, '2026-12-01-soak', ['.json', '.md'])).toBe(n === 0 ? '2026-12-01-soak' : `2026-12-01-soak-${n + 1}`);
            // Only the extensions asked about count: a lone .md does not take a name the soak writes as .json.
            const jsonOnly = taken.findIndex((kind) => kind === 'none' || kind === 'md');
            const m = jsonOnly === -1 ? taken.length : jsonOnly;
            expect(unusedResultName(dir, '2026-12-01-soak', ['.json'])).toBe(m === 0 ? '2026-12-01-soak' : `2026-12-01-soak-${m + 1}`);
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        },
      ),
      { numRuns: 60 },
    );
  });
});
