import { createHash } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { checkDatasetFile, datasetName } from './dataset-file.js';
import { checkRoleFile, roleName } from './role-file.js';
import { checkMasking, checkPurposes } from './tables.js';
import { PolicyBundleError, type DatasetDef, type MaskStrategyName, type MaskingTable, type PolicyBundle, type PolicyProblem, type RoleDef } from './types.js';
import { YamlSource } from './yaml-source.js';

export * from './types.js';

const PURPOSES = 'purposes.yaml';
const MASKING = 'masking.yaml';
const DATASETS = 'datasets';
const yamlFile = /\.ya?ml$/;
const testFile = /\.test\.ya?ml$/;

/**
 * Loads and validates the policy bundle in `dir`. Every problem is collected
 * and thrown as one PolicyBundleError: a bundle is used whole or not at all.
 * Datasets live in `dir/datasets/` unless `datasetsDir` says otherwise (a
 * second ConfigMap in Kubernetes, which cannot nest directories).
 */
export async function loadBundle(dir: string, datasetsDir: string = join(dir, DATASETS)): Promise<PolicyBundle> {
  const problems: PolicyProblem[] = [];
  const names = await listPolicyFiles(dir, datasetsDir, problems);
  if (!names) throw new PolicyBundleError(problems);
  const sources = new Map<string, YamlSource>();
  for (const name of names) {
    const path = name.startsWith(`${DATASETS}/`) ? join(datasetsDir, name.slice(DATASETS.length + 1)) : join(dir, name);
    const src = await YamlSource.read(path, problems);
    if (src) sources.set(name, src);
  }
  for (const required of [PURPOSES, MASKING]) {
    if (!names.includes(required)) problems.push({ file: join(dir, required), line: 1, reason: `missing ${required}` });
  }
  const purposesSrc = sources.get(PURPOSES);
  const maskingSrc = sources.get(MASKING);
  const purposes = purposesSrc ? checkPurposes(purposesSrc) : [];
  const masking = maskingSrc ? checkMasking(maskingSrc) : {};
  const roles = checkRoles(sources, { purposes, masking }, problems);
  const datasets = checkDatasets(sources, purposes, problems);
  if (problems.length > 0) throw new PolicyBundleError(problems);
  return {
    version: bundleVersion(sources),
    dir,
    roles,
    masking: deepFreeze(masking),
    purposes: deepFreeze(purposes),
    datasets,
  };
}

/** Policy files relative to `dir`, sorted: top-level YAML (tests excluded) and datasets/*.yaml. */
async function listPolicyFiles(dir: string, datasetsDir: string, problems: PolicyProblem[]): Promise<string[] | undefined> {
  let top: string[];
  try {
    top = await readdir(dir);
  } catch (error) {
    problems.push({ file: dir, line: 1, reason: `cannot read policy directory (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
    return undefined;
  }
  const names = top.filter((n) => yamlFile.test(n) && !testFile.test(n));
  // No datasets directory means no datasets; an unreadable one is a problem like any other.
  const datasets = await readdir(datasetsDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'ENOENT') problems.push({ file: datasetsDir, line: 1, reason: `cannot read datasets directory (${error.code ?? 'error'})` });
    return [] as string[];
  });
  names.push(...datasets.filter((n) => yamlFile.test(n) && !testFile.test(n)).map((n) => `${DATASETS}/${n}`));
  return names.sort();
}

function checkRoles(
  sources: Map<string, YamlSource>,
  tables: { purposes: string[]; masking: MaskingTable },
  problems: PolicyProblem[],
): Map<string, RoleDef> {
  const roles = new Map<string, RoleDef>();
  const declaredIn = new Map<string, string>();
  for (const [name, src] of sources) {
    if (name === PURPOSES || name === MASKING || name.startsWith(`${DATASETS}/`)) continue;
    const expectedRole = name.replace(yamlFile, '');
    if (!roleName.test(expectedRole)) {
      problems.push({ file: src.file, line: 1, reason: `file name "${name}" is not a role name ([a-z][a-z0-9_]*.yaml)` });
      continue;
    }
    const declared = typeof (src.value as { role?: unknown } | null)?.role === 'string' ? (src.value as { role: string }).role : undefined;
    const first = declared === expectedRole ? declaredIn.get(declared) : undefined;
    if (declared !== undefined && first !== undefined) {
      src.fail(['role'], `duplicate role "${declared}" (already defined in ${first})`);
      continue;
    }
    // Only a matching declaration claims the role: a mismatched file is reported as such, not as a duplicate.
    if (declared === expectedRole) declaredIn.set(declared, src.file);
    const role = checkRoleFile(src, { expectedRole, ...tables });
    if (role) roles.set(role.name, deepFreeze(role));
  }
  return roles;
}

function checkDatasets(sources: Map<string, YamlSource>, purposes: string[], problems: PolicyProblem[]): Map<string, DatasetDef> {
  const datasets = new Map<string, DatasetDef>();
  for (const [name, src] of sources) {
    if (!name.startsWith(`${DATASETS}/`)) continue;
    const expectedName = name.slice(DATASETS.length + 1).replace(yamlFile, '');
    if (!datasetName.test(expectedName)) {
      problems.push({ file: src.file, line: 1, reason: `file name "${name}" is not a dataset name ([a-z][a-z0-9_]*.yaml)` });
      continue;
    }
    const dataset = checkDatasetFile(src, { expectedName, purposes });
    if (dataset) datasets.set(dataset.name, deepFreeze(dataset));
  }
  return datasets;
}

/** sha-256 over sorted file names and key-sorted parsed content: comments and layout do not count. */
function bundleVersion(sources: Map<string, YamlSource>): string {
  const entries = [...sources.keys()].sort().map((name) => [name, canonical(sources.get(name)?.value)]);
  return createHash('sha256').update(JSON.stringify(entries)).digest('hex');
}

function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (value && typeof value === 'object') {
    const record = value as Record<string, unknown>;
    return Object.fromEntries(Object.keys(record).sort().map((k) => [k, canonical(record[k])]));
  }
  return value ?? null;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

/** The masking strategy of a field, or undefined when the field is not maskable (read gives raw). */
export function maskStrategy(bundle: PolicyBundle, subject: string, field: string): MaskStrategyName | undefined {
  const table = Object.hasOwn(bundle.masking, subject) ? bundle.masking[subject as keyof MaskingTable] : undefined;
  return table && Object.hasOwn(table, field) ? table[field]?.strategy : undefined;
}

/** Whether a field is sensitive: raw only through reveal with a declared purpose. */
export function isSensitive(bundle: PolicyBundle, subject: string, field: string): boolean {
  const table = Object.hasOwn(bundle.masking, subject) ? bundle.masking[subject as keyof MaskingTable] : undefined;
  return Boolean(table && Object.hasOwn(table, field) && table[field]?.requiresPurpose);
}
