import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { PolicyBundleError, type DatasetDef, type PolicyBundle, type PolicyProblem, type RuleOrigin } from '../policy/types.js';
import { YamlSource, checkMap, isRecord, type Path } from '../policy/yaml-source.js';
import { planRelease, quasiColumns, type Group, type QuasiValues } from './anonymity.js';

/**
 * The tests beside a dataset (`datasets/<name>.test.yaml`): a small
 * population of level-0 quasi-identifier groups and what its release plan
 * must do with them (released as which values, generalized, suppressed).
 */
export interface DatasetCase {
  name: string;
  origin: RuleOrigin;
  dataset: DatasetDef;
  population: Group[];
  expect: {
    suppressed?: number;
    generalized?: number;
    released: Array<{ of: Record<string, string>; as?: Record<string, string>; suppressed?: boolean; line: number }>;
  };
}

export interface DatasetCaseResult {
  datasetCase: DatasetCase;
  failures: string[];
}

const caseName = /^[a-z0-9_]+$/;

export async function loadDatasetCases(bundle: PolicyBundle): Promise<DatasetCase[]> {
  const dir = join(bundle.dir, 'datasets');
  const names = await readdir(dir).catch(() => [] as string[]);
  const problems: PolicyProblem[] = [];
  const cases: DatasetCase[] = [];
  for (const name of names.filter((n) => /\.test\.ya?ml$/.test(n)).sort()) {
    const datasetName = name.replace(/\.test\.ya?ml$/, '');
    const src = await YamlSource.read(join(dir, name), problems);
    if (!src) continue;
    const def = bundle.datasets.get(datasetName);
    if (!def) {
      src.fail([], `no dataset "${datasetName}" beside this test file`);
      continue;
    }
    cases.push(...checkCaseFile(src, def));
  }
  if (problems.length > 0) throw new PolicyBundleError(problems);
  return cases;
}

function checkCaseFile(src: YamlSource, def: DatasetDef): DatasetCase[] {
  const top = checkMap(src, src.value, [], { allowed: ['cases'], required: ['cases'] });
  if (!top || !Array.isArray(top.cases) || top.cases.length === 0) {
    if (top) src.fail(['cases'], 'cases must be a non-empty list');
    return [];
  }
  const quasi = quasiColumns(def).map((q) => q.name);
  const out: DatasetCase[] = [];
  for (const [i, raw] of top.cases.entries()) {
    const path: Path = ['cases', i];
    const c = checkMap(src, raw, path, { allowed: ['name', 'population', 'expect'], required: ['name', 'population', 'expect'] });
    if (!c) continue;
    if (typeof c.name !== 'string' || !caseName.test(c.name)) {
      src.fail([...path, 'name'], 'case name must match [a-z0-9_]+');
      continue;
    }
    const population = checkPopulation(src, c.population, [...path, 'population'], quasi);
    const expect = checkExpect(src, c.expect, [...path, 'expect'], def);
    if (population && expect) out.push({ name: c.name, origin: { file: src.file, line: src.lineOf(path) }, dataset: def, population, expect });
  }
  return out;
}

function checkPopulation(src: YamlSource, value: unknown, path: Path, quasi: string[]): Group[] | undefined {
  if (!Array.isArray(value) || value.length === 0) {
    src.fail(path, 'population must be a non-empty list of groups');
    return undefined;
  }
  const groups: Group[] = [];
  for (const [i, raw] of value.entries()) {
    const g = checkMap(src, raw, [...path, i], { allowed: [...quasi, 'count'], required: [...quasi, 'count'] });
    if (!g) return undefined;
    if (!Number.isInteger(g.count) || (g.count as number) < 1) {
      src.fail([...path, i, 'count'], 'count must be a positive integer');
      return undefined;
    }
    if (!quasi.every((q) => g[q] === null || typeof g[q] === 'string')) {
      src.fail([...path, i], `values of ${quasi.join(', ')} must be strings (quote numbers)`);
      return undefined;
    }
    groups.push({ values: quasi.map((q) => (g[q] as string | null) ?? null), count: g.count as number });
  }
  return groups;
}

function checkExpect(src: YamlSource, value: unknown, path: Path, def: DatasetDef): DatasetCase['expect'] | undefined {
  const e = checkMap(src, value, path, { allowed: ['suppressed', 'generalized', 'released'] });
  if (!e) return undefined;
  const columns = def.columns.map((c) => c.name);
  const out: DatasetCase['expect'] = { released: [] };
  for (const key of ['suppressed', 'generalized'] as const) {
    if (e[key] === undefined) continue;
    if (!Number.isInteger(e[key]) || (e[key] as number) < 0) {
      src.fail([...path, key], `${key} must be a non-negative integer`);
      return undefined;
    }
    out[key] = e[key] as number;
  }
  const released = e.released ?? [];
  if (!Array.isArray(released)) {
    src.fail([...path, 'released'], 'released must be a list');
    return undefined;
  }
  for (const [i, raw] of released.entries()) {
    const r = checkMap(src, raw, [...path, 'released', i], { allowed: ['of', 'as', 'suppressed'], required: ['of'] });
    if (!r || !isRecord(r.of) || (r.as !== undefined && !isRecord(r.as)) || (r.suppressed !== undefined && r.suppressed !== true)) {
      src.fail([...path, 'released', i], 'each entry is {of: {column: value}, as: {column: value}} or {of: …, suppressed: true}');
      return undefined;
    }
    const named = [...Object.keys(r.of), ...Object.keys(r.as ?? {})];
    const unknown = named.filter((n) => !columns.includes(n));
    if (unknown.length > 0) {
      src.fail([...path, 'released', i], `unknown column ${unknown.join(', ')} of ${def.name}`);
      return undefined;
    }
    out.released.push({
      of: r.of as Record<string, string>,
      ...(r.as ? { as: r.as as Record<string, string> } : {}),
      ...(r.suppressed ? { suppressed: true } : {}),
      line: src.lineOf([...path, 'released', i]),
    });
  }
  return out;
}

/** Plans the case's population and compares it with what the case expects. */
export function runDatasetCase(c: DatasetCase): DatasetCaseResult {
  const plan = planRelease(c.dataset, c.population);
  const quasi = quasiColumns(c.dataset).map((q) => q.name);
  const failures: string[] = [];
  if (c.expect.suppressed !== undefined && plan.suppressed !== c.expect.suppressed) failures.push(`suppressed ${plan.suppressed}, expected ${c.expect.suppressed}`);
  if (c.expect.generalized !== undefined && plan.generalized !== c.expect.generalized) failures.push(`generalized ${plan.generalized}, expected ${c.expect.generalized}`);
  for (const r of c.expect.released) {
    const matches = c.population.filter((g) => Object.entries(r.of).every(([col, v]) => g.values[quasi.indexOf(col)] === v));
    if (matches.length === 0) {
      failures.push(`line ${r.line}: no population group matches ${JSON.stringify(r.of)}`);
      continue;
    }
    for (const group of matches) {
      const placed = plan.placement(group.values);
      if (r.suppressed) {
        if (placed.level !== 'suppressed') failures.push(`line ${r.line}: ${show(quasi, group.values)} released as ${show(quasi, placed.values)}, expected suppressed`);
        continue;
      }
      if (placed.level === 'suppressed') {
        failures.push(`line ${r.line}: ${show(quasi, group.values)} suppressed, expected released`);
        continue;
      }
      for (const [col, want] of Object.entries(r.as ?? {})) {
        const got = placed.values[quasi.indexOf(col)];
        if (got !== want) failures.push(`line ${r.line}: ${show(quasi, group.values)} released ${col}=${String(got)}, expected ${want}`);
      }
    }
  }
  return { datasetCase: c, failures };
}

function show(quasi: string[], values: QuasiValues): string {
  return `{${quasi.map((q, i) => `${q}: ${String(values[i])}`).join(', ')}}`;
}
