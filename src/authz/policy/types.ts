import type { Action, SubjectName } from '../subjects.js';

/** Where a piece of policy was written: reported by the loader, explain and audit. */
export interface RuleOrigin {
  file: string;
  line: number;
}

/** One problem found while loading the bundle; never contains a personal value. */
export interface PolicyProblem {
  file: string;
  line: number;
  reason: string;
}

/** A validated condition object (MongoDB-style subset, see conditions.ts). */
export type Conditions = Record<string, unknown>;

/** One validated rule of a role file. */
export interface RuleDef {
  actions: Action[];
  subject: SubjectName;
  /** Absent: every field of the subject. */
  fields?: string[];
  conditions?: Conditions;
  /** Absent: applies whatever the declared purpose; present: only for one of these. */
  purposes?: string[];
  inverted: boolean;
  reason?: string;
  origin: RuleOrigin;
}

export interface RoleDef {
  name: string;
  description?: string;
  file: string;
  rules: RuleDef[];
}

export const maskStrategies = ['last4', 'email', 'surname', 'province_city', 'age_band', 'redact', 'hmac'] as const;
export type MaskStrategyName = (typeof maskStrategies)[number];

export interface MaskSpec {
  strategy: MaskStrategyName;
  /** Sensitive: raw only through a reveal rule that lists the declared purpose. */
  requiresPurpose: boolean;
}

/** subject → field → masking; a field absent here is not maskable. */
export type MaskingTable = Partial<Record<SubjectName, Readonly<Record<string, MaskSpec>>>>;

export interface PolicyBundle {
  /** sha-256 hex of the canonical content: changes with any rule, not with whitespace or comments. */
  version: string;
  dir: string;
  roles: Map<string, RoleDef>;
  masking: MaskingTable;
  purposes: string[];
  /** Analytics datasets by name (policies/datasets/). */
  datasets: Map<string, DatasetDef>;
}

export class PolicyBundleError extends Error {
  override name = 'PolicyBundleError';
  readonly problems: PolicyProblem[];

  constructor(problems: PolicyProblem[]) {
    const lines = problems.map((p) => `  ${p.file}:${p.line}: ${p.reason}`);
    super(`invalid policy bundle (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`);
    this.problems = problems;
  }
}

/** One column of an analytics dataset (policies/datasets/*.yaml). */
export type DatasetColumnDef =
  | { name: string; kind: 'pseudonym'; type: 'string' }
  | { name: string; kind: 'attribute'; source: string; transform: string; type: 'string' }
  | { name: string; kind: 'aggregate'; aggregate: string; type: 'string' | 'int' };

/** A minimized dataset: what analytics may pull, generalized until every quasi-identifier group has k rows. */
export interface DatasetDef {
  name: string;
  description?: string;
  file: string;
  purpose: string;
  k: number;
  /** required: only customers with an active consent for the purpose; unless_withdrawn: all but those who withdrew it. */
  consent: 'required' | 'unless_withdrawn';
  columns: DatasetColumnDef[];
  /** Steps tried in order on rows whose group is smaller than k: column → generalizer. */
  generalization: Array<Record<string, string>>;
}
