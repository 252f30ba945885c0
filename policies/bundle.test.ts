import { basename, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadBundle } from '../src/authz/policy/bundle.js';
import { describeResult, loadCases, runCase, type PolicyCase } from '../src/authz/policy/cases.js';
import { loadDatasetCases, runDatasetCase } from '../src/authz/dataset/cases.js';
import { demoPrincipals } from '../src/authz/policy/demo-principals.js';

// The shipped bundle, exactly as the server loads it; a load error fails this whole file.
const dir = relative(process.cwd(), fileURLToPath(new URL('.', import.meta.url))) || '.';
const bundle = await loadBundle(dir);
const cases = await loadCases(bundle);
const datasetCases = await loadDatasetCases(bundle);

const byFile = new Map<string, PolicyCase[]>();
for (const c of cases) byFile.set(basename(c.origin.file), [...(byFile.get(basename(c.origin.file)) ?? []), c]);

describe('shipped policy bundle', () => {
  it('has a test file with allow-or-mask and deny cases beside every role that grants anything', () => {
    for (const role of bundle.roles.values()) {
      const own = byFile.get(`${role.name}.test.yaml`) ?? [];
      expect(own.filter((c) => c.expect === 'deny').length, `${role.name}: deny cases`).toBeGreaterThan(0);
      if (role.rules.length > 0) expect(own.filter((c) => c.expect !== 'deny').length, `${role.name}: allow cases`).toBeGreaterThan(0);
    }
  });

  it('has release-plan cases beside every dataset, with suppression among them', () => {
    expect(bundle.datasets.size).toBeGreaterThan(0);
    for (const name of bundle.datasets.keys()) {
      const own = datasetCases.filter((c) => c.dataset.name === name);
      expect(own.length, `${name}: cases`).toBeGreaterThan(0);
      expect(own.some((c) => (c.expect.suppressed ?? 0) > 0), `${name}: a suppression case`).toBe(true);
    }
  });

  it('defines every role a demo principal holds', () => {
    for (const p of demoPrincipals) for (const role of p.roles) expect(bundle.roles.has(role), `${p.id}: ${role}`).toBe(true);
  });
});

for (const [file, fileCases] of byFile) {
  describe(file, () => {
    it.each(fileCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
      const result = runCase(bundle, c);
      expect(result.actual.decision, describeResult(result)).toBe(c.expect);
    });
  });
}

describe('datasets', () => {
  it.each(datasetCases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    expect(runDatasetCase(c).failures).toEqual([]);
  });
});
