import { parseArgs } from 'node:util';
import { explain } from '../authz/policy/ability.js';
import { loadBundle, type PolicyBundle } from '../authz/policy/bundle.js';
import { demoPrincipal, demoPrincipals } from '../authz/policy/demo-principals.js';
import type { Principal } from '../authz/principal.js';
import { actions, subjects, type FieldSpec, type SubjectName } from '../authz/subjects.js';
import { loadConfig } from '../config.js';
import { UsageError } from './args.js';

const usage = `usage: npm run policy:explain -- --principal <id> --action <action> --subject <Subject>
         [--field <field>] [--resource '<json object>'] [--purpose <purpose>] [--dir <policy dir>]`;

interface Request {
  principal: Principal;
  action: string;
  subject: SubjectName;
  field?: string;
  resource: Record<string, unknown>;
  purpose?: string;
}

function parse(argv: string[]): { dir?: string; raw: Record<string, string | undefined> } {
  const option = { type: 'string' } as const;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { principal: option, action: option, subject: option, field: option, resource: option, purpose: option, dir: option },
      strict: true,
      allowPositionals: false,
    });
    return { dir: values.dir, raw: values };
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

function toRequest(raw: Record<string, string | undefined>, bundle: PolicyBundle): Request {
  const { principal: id, action, subject, field, purpose } = raw;
  if (!id || !action || !subject) throw new UsageError('--principal, --action and --subject are required');
  const principal = demoPrincipal(id);
  if (!principal) throw new UsageError(`unknown principal "${id}" (demo principals: ${demoPrincipals.map((p) => p.id).join(', ')})`);
  if (!(actions as readonly string[]).includes(action)) throw new UsageError(`unknown action "${action}" (one of: ${actions.join(', ')})`);
  if (!Object.hasOwn(subjects, subject)) throw new UsageError(`unknown subject "${subject}" (one of: ${Object.keys(subjects).join(', ')})`);
  const fields: Record<string, FieldSpec> = subjects[subject as SubjectName].fields;
  if (field !== undefined && !Object.hasOwn(fields, field)) {
    throw new UsageError(`unknown field "${field}" of ${subject} (one of: ${Object.keys(fields).join(', ')})`);
  }
  if (purpose !== undefined && !bundle.purposes.includes(purpose)) {
    throw new UsageError(`unknown purpose "${purpose}" (one of: ${bundle.purposes.join(', ')})`);
  }
  return { principal, action, subject: subject as SubjectName, field, purpose, resource: parseResource(raw.resource, fields) };
}

function parseResource(text: string | undefined, fields: Record<string, FieldSpec>): Record<string, unknown> {
  if (text === undefined) return {};
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageError('--resource must be a JSON object, e.g. \'{"ownerId":"u-rep-2"}\'');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError('--resource must be a JSON object');
  // explain() copies known fields only (see toSubject); say which keys it ignores rather than dropping them silently.
  const ignored = Object.keys(value).filter((k) => !Object.hasOwn(fields, k));
  if (ignored.length > 0) console.error(`note: ignoring unknown resource keys: ${ignored.map((k) => JSON.stringify(k)).join(', ')}`);
  return value as Record<string, unknown>;
}

async function main(argv: string[]): Promise<number> {
  const { dir, raw } = parse(argv);
  const bundle = await loadBundle(dir ?? loadConfig().policyDir);
  const request = toRequest(raw, bundle);
  const result = explain(bundle, request.principal, request);
  const rule = result.rule ? `${result.rule.file}:${result.rule.line}` : `no rule matched${result.note ? ` (${result.note})` : ''}`;
  console.log(`decision: ${result.decision}`);
  console.log(`rule: ${rule}`);
  console.log(`policy version: ${bundle.version}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Messages only, never a stack trace: every expected failure carries a readable message.
    console.error(error instanceof Error ? error.message : String(error));
    if (error instanceof UsageError) console.error(usage);
    process.exitCode = error instanceof UsageError ? 2 : 1;
  },
);
