import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { actions, subjects, type FieldSpec, type SubjectName } from '../subjects.js';
import { explain, type Decision, type Explanation } from './ability.js';
import { demoPrincipal } from './demo-principals.js';
import { PolicyBundleError, type PolicyBundle, type PolicyProblem, type RuleOrigin } from './types.js';
import { YamlSource, checkMap, isRecord, type Path } from './yaml-source.js';

/** One scenario of a `<role>.test.yaml` file, with its expected decision. */
export interface PolicyCase {
  name: string;
  origin: RuleOrigin;
  principal: string;
  action: string;
  subject: SubjectName;
  field?: string;
  resource?: Record<string, unknown>;
  purpose?: string;
  expect: Decision;
}

export interface CaseResult {
  policyCase: PolicyCase;
  actual: Explanation;
  passed: boolean;
}

const caseKeys = ['name', 'principal', 'action', 'subject', 'field', 'resource', 'purpose', 'expect'] as const;
const decisions: readonly Decision[] = ['allow', 'mask', 'deny'];
const caseName = /^[a-z0-9_]+$/;

/**
 * Loads every `*.test.yaml` case beside the bundle. Cases are checked as
 * strictly as rules: a typo in a field or principal would otherwise turn a
 * deny case into one that passes for the wrong reason.
 */
export async function loadCases(bundle: PolicyBundle): Promise<PolicyCase[]> {
  const problems: PolicyProblem[] = [];
  const files = (await readdir(bundle.dir)).filter((n) => /\.test\.ya?ml$/.test(n)).sort();
  const cases: PolicyCase[] = [];
  for (const name of files) {
    const src = await YamlSource.read(join(bundle.dir, name), problems);
    if (src) cases.push(...checkCaseFile(src, bundle));
  }
  const seen = new Map<string, PolicyCase>();
  for (const c of cases) {
    const first = seen.get(c.name);
    if (first) problems.push({ ...c.origin, reason: `duplicate case name "${c.name}" (first at ${first.origin.file}:${first.origin.line})` });
    else seen.set(c.name, c);
  }
  if (problems.length > 0) throw new PolicyBundleError(problems);
  return cases;
}

function checkCaseFile(src: YamlSource, bundle: PolicyBundle): PolicyCase[] {
  const top = checkMap(src, src.value, [], { allowed: ['cases'], required: ['cases'] });
  if (!top || top.cases === undefined) return [];
  if (!Array.isArray(top.cases) || top.cases.length === 0) {
    src.fail(['cases'], 'cases must be a non-empty list');
    return [];
  }
  return top.cases.flatMap((raw, i) => {
    const c = checkCase(src, raw, ['cases', i], bundle);
    return c ? [c] : [];
  });
}

function checkCase(src: YamlSource, raw: unknown, path: Path, bundle: PolicyBundle): PolicyCase | undefined {
  const c = checkMap(src, raw, path, { allowed: caseKeys, required: ['name', 'principal', 'action', 'subject', 'expect'] });
  if (!c) return undefined;
  const bad = (key: string, reason: string): false => (src.fail([...path, key], reason), false);
  let clean = Object.keys(c).every((k) => (caseKeys as readonly string[]).includes(k));
  const { name, principal, action, subject, field, resource, purpose, expect } = c;
  if (typeof name !== 'string' || !caseName.test(name)) clean = bad('name', 'name must match [a-z0-9_]+ and describe the scenario');
  if (typeof principal !== 'string' || !demoPrincipal(principal)) clean = bad('principal', `unknown demo principal ${JSON.stringify(principal)}`);
  if (typeof action !== 'string' || !(actions as readonly string[]).includes(action)) clean = bad('action', `unknown action ${JSON.stringify(action)}`);
  if (typeof subject !== 'string' || !Object.hasOwn(subjects, subject)) {
    bad('subject', `unknown subject ${JSON.stringify(subject)}`);
    return undefined;
  }
  const fields: Record<string, FieldSpec> = subjects[subject as SubjectName].fields;
  if (field !== undefined && (typeof field !== 'string' || !Object.hasOwn(fields, field))) clean = bad('field', `unknown field ${JSON.stringify(field)} of ${subject}`);
  if (resource !== undefined) clean = checkResource(src, subject as SubjectName, resource, [...path, 'resource']) && clean;
  if (purpose !== undefined && (typeof purpose !== 'string' || !bundle.purposes.includes(purpose))) clean = bad('purpose', `unknown purpose ${JSON.stringify(purpose)}`);
  if (typeof expect !== 'string' || !(decisions as readonly string[]).includes(expect)) clean = bad('expect', `expect must be one of ${decisions.join(', ')}`);
  if (!clean) return undefined;
  return {
    name: name as string,
    origin: { file: src.file, line: src.lineOf(path) },
    principal: principal as string,
    action: action as string,
    subject: subject as SubjectName,
    field: field as string | undefined,
    resource: resource as Record<string, unknown> | undefined,
    purpose: purpose as string | undefined,
    expect: expect as Decision,
  };
}

function checkResource(src: YamlSource, subject: SubjectName, value: unknown, path: Path): boolean {
  if (!isRecord(value)) {
    src.fail(path, 'resource must be a mapping of field → value');
    return false;
  }
  const fields: Record<string, FieldSpec> = subjects[subject].fields;
  let clean = true;
  for (const [key, v] of Object.entries(value)) {
    const spec = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (!spec) {
      src.fail([...path, key], `unknown field "${key}" of ${subject}`, true);
      clean = false;
    } else if (spec.kind === 'relation' && spec.cardinality === 'one') {
      clean = checkResource(src, spec.subject, v, [...path, key]) && clean;
    } else if (spec.kind === 'relation' || (typeof v !== 'string' && typeof v !== 'number')) {
      src.fail([...path, key], `"${key}" must be a string or number here`);
      clean = false;
    }
  }
  return clean;
}

/** Runs one case against the bundle. */
export function runCase(bundle: PolicyBundle, policyCase: PolicyCase): CaseResult {
  const principal = demoPrincipal(policyCase.principal);
  const actual: Explanation = principal
    ? explain(bundle, principal, policyCase)
    : { decision: 'deny', rule: null, note: `unknown principal "${policyCase.principal}"` };
  return { policyCase, actual, passed: actual.decision === policyCase.expect };
}

/** One line naming the case, what was expected and which rule decided instead. */
export function describeResult({ policyCase: c, actual, passed }: CaseResult): string {
  const rule = actual.rule ? `${actual.rule.file}:${actual.rule.line}` : (actual.note ?? 'no rule matched');
  const verdict = passed ? `${actual.decision}` : `expected ${c.expect}, got ${actual.decision}`;
  return `${c.origin.file}:${c.origin.line}: ${c.name}: ${verdict} (${rule})`;
}
