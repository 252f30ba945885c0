import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isSensitive, loadBundle, maskStrategy, PolicyBundleError } from './bundle.js';

const purposes = `purposes:
  - id: contact
    description: Contacting one's own customer.
  - id: dsr
    description: Data-subject requests.
`;
const masking = `Customer:
  name: { strategy: surname }
  phone: { strategy: last4, requiresPurpose: true }
`;
const salesRep = `role: sales_rep
rules:
  - action: read
    subject: Customer
    fields: [id, name, phone, city]
    conditions: { ownerId: '\${principal.id}' }
  - action: reveal
    subject: Customer
    fields: [phone]
    conditions: { ownerId: '\${principal.id}' }
    purposes: [contact]
`;

const dataset = `dataset: tiers
purpose: contact
columns:
  - { name: pid, source: id, transform: pseudonym }
  - { name: tier, source: tier }
`;

type Files = Record<string, string | null>;
const dirs: string[] = [];

/** A bundle directory with a valid base; `files` overrides (null deletes) entries by name. */
async function fixture(files: Files = {}): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'custos-policy-'));
  dirs.push(dir);
  const all: Files = { 'purposes.yaml': purposes, 'masking.yaml': masking, 'sales_rep.yaml': salesRep, ...files };
  for (const [name, text] of Object.entries(all)) {
    if (text === null) continue;
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

/** A role file with one rule, written as YAML lines under `rules:` (rule starts on line 3). */
function roleWith(rule: string, role = 'sales_rep'): string {
  return `role: ${role}\nrules:\n${rule}`;
}

async function expectProblem(files: Files, problem: { file: string; line: number; reason: RegExp }): Promise<void> {
  const dir = await fixture(files);
  await expect(loadBundle(dir)).rejects.toMatchObject({
    name: 'PolicyBundleError',
    problems: expect.arrayContaining([{ file: join(dir, problem.file), line: problem.line, reason: expect.stringMatching(problem.reason) }]),
  });
}

afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe(loadBundle.name, () => {
  it('loads a valid bundle with its roles, masking table and purposes', async () => {
    const bundle = await loadBundle(await fixture());
    expect(bundle.version).toMatch(/^[0-9a-f]{64}$/);
    expect(bundle.purposes).toEqual(['contact', 'dsr']);
    const rules = bundle.roles.get('sales_rep')?.rules ?? [];
    expect(rules.map((r) => r.origin.line)).toEqual([3, 7]);
    expect(rules[1]).toMatchObject({ actions: ['reveal'], subject: 'Customer', fields: ['phone'], purposes: ['contact'], inverted: false });
    expect(maskStrategy(bundle, 'Customer', 'phone')).toBe('last4');
    expect(maskStrategy(bundle, 'Customer', 'city')).toBeUndefined();
    expect(isSensitive(bundle, 'Customer', 'phone')).toBe(true);
    expect(isSensitive(bundle, 'Customer', 'name')).toBe(false);
    expect(isSensitive(bundle, 'Customer', 'toString')).toBe(false);
  });

  it('keeps the version when only comments and layout change', async () => {
    const a = await loadBundle(await fixture());
    const b = await loadBundle(await fixture({ 'sales_rep.yaml': `# a comment\n${salesRep.replace('[id, name, phone, city]', '[ id,  name,\n      phone, city ]')}` }));
    expect(b.version).toBe(a.version);
  });

  it('changes the version with any rule, masking or dataset change, but not with test files', async () => {
    const base = (await loadBundle(await fixture())).version;
    const changed: Files[] = [
      { 'sales_rep.yaml': salesRep.replace('[id, name, phone, city]', '[id, name, phone]') },
      { 'masking.yaml': masking.replace('surname', 'redact') },
      { 'datasets/tiers.yaml': dataset },
    ];
    for (const files of changed) expect((await loadBundle(await fixture(files))).version).not.toBe(base);
    expect((await loadBundle(await fixture({ 'sales_rep.test.yaml': 'cases: []\n' }))).version).toBe(base);
  });

  it('rejects a YAML syntax error with its line', async () => {
    await expectProblem({ 'sales_rep.yaml': 'role: sales_rep\nrules:\n  - action: [read\n' }, { file: 'sales_rep.yaml', line: 4, reason: /YAML syntax error/ });
  });

  it('rejects a duplicate key as a syntax error', async () => {
    await expectProblem({ 'sales_rep.yaml': 'role: sales_rep\nrole: sales_rep\nrules: []\n' }, { file: 'sales_rep.yaml', line: 2, reason: /unique/ });
  });

  it('rejects an unknown rule key', async () => {
    const rule = '  - action: read\n    subject: Customer\n    when: always\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(rule) }, { file: 'sales_rep.yaml', line: 5, reason: /unknown key "when"/ });
  });

  it('rejects an unknown top-level key of a role file', async () => {
    await expectProblem({ 'sales_rep.yaml': 'role: sales_rep\nrules: []\nextends: admin\n' }, { file: 'sales_rep.yaml', line: 3, reason: /unknown key "extends"/ });
  });

  it('rejects an unknown subject', async () => {
    await expectProblem({ 'sales_rep.yaml': roleWith('  - action: read\n    subject: Invoice\n') }, { file: 'sales_rep.yaml', line: 4, reason: /unknown subject "Invoice"/ });
  });

  it('rejects an unknown action, alone or in a list', async () => {
    await expectProblem({ 'sales_rep.yaml': roleWith('  - action: [read, manage]\n    subject: Customer\n') }, { file: 'sales_rep.yaml', line: 3, reason: /unknown action "manage"/ });
  });

  it('rejects an unknown field of the subject', async () => {
    const rule = '  - action: read\n    subject: Customer\n    fields:\n      - id\n      - creditScore\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(rule) }, { file: 'sales_rep.yaml', line: 7, reason: /unknown field "creditScore" of Customer/ });
  });

  it('rejects an unknown masking strategy', async () => {
    await expectProblem({ 'masking.yaml': 'Customer:\n  phone: { strategy: last4 }\n  email: { strategy: rot13 }\n' }, { file: 'masking.yaml', line: 3, reason: /unknown masking strategy "rot13"/ });
  });

  it('rejects masking of an unknown field', async () => {
    await expectProblem({ 'masking.yaml': 'Customer:\n  iban: { strategy: last4 }\n' }, { file: 'masking.yaml', line: 2, reason: /unknown field "iban"/ });
  });

  it('rejects a purpose that purposes.yaml does not declare', async () => {
    const rule = '  - action: reveal\n    subject: Customer\n    fields: [phone]\n    purposes: [contact, marketing]\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(rule) }, { file: 'sales_rep.yaml', line: 6, reason: /unknown purpose "marketing"/ });
  });

  it('rejects unknown operators, at document and at field level', async () => {
    const doc = '  - action: read\n    subject: Customer\n    conditions:\n      $nor: [{ tier: gold }]\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(doc) }, { file: 'sales_rep.yaml', line: 6, reason: /unknown operator "\$nor"/ });
    const field = '  - action: read\n    subject: Customer\n    conditions:\n      city: { $regex: "^Sh" }\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(field) }, { file: 'sales_rep.yaml', line: 6, reason: /unknown operator "\$regex"/ });
  });

  it('rejects a condition on an encrypted field', async () => {
    const rule = '  - action: read\n    subject: Customer\n    conditions: { phone: "13800138000" }\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(rule) }, { file: 'sales_rep.yaml', line: 5, reason: /"phone" of Customer has no plain column/ });
  });

  it('accepts relation paths to one parent and rejects them through to-many relations', async () => {
    const ok = '  - action: read\n    subject: Order\n    conditions: { customer.ownerId: "${principal.id}" }\n';
    await expect(loadBundle(await fixture({ 'sales_rep.yaml': roleWith(ok) }))).resolves.toBeDefined();
    const many = '  - action: read\n    subject: Customer\n    conditions: { orders.status: paid }\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(many) }, { file: 'sales_rep.yaml', line: 5, reason: /to-many/ });
  });

  it('rejects templates other than principal id, department and region', async () => {
    const rule = '  - action: read\n    subject: Customer\n    conditions:\n      $or:\n        - { ownerId: "${principal.email}" }\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(rule) }, { file: 'sales_rep.yaml', line: 7, reason: /unknown template "\$\{principal\.email\}"/ });
  });

  it('rejects a role that does not match its file name', async () => {
    await expectProblem({ 'sales_rep.yaml': 'role: sales_manager\nrules: []\n' }, { file: 'sales_rep.yaml', line: 1, reason: /does not match its file name/ });
  });

  it('rejects a role defined twice', async () => {
    await expectProblem({ 'sales_rep.yml': 'role: sales_rep\nrules: []\n' }, { file: 'sales_rep.yml', line: 1, reason: /duplicate role "sales_rep"/ });
  });

  it('rejects a reveal of a sensitive field without purposes, but not of a plain maskable one', async () => {
    const rule = '  - action: reveal\n    subject: Customer\n    fields: [name, phone]\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(rule) }, { file: 'sales_rep.yaml', line: 3, reason: /sensitive field phone must list purposes/ });
    const name = '  - action: reveal\n    subject: Customer\n    fields: [name]\n';
    await expect(loadBundle(await fixture({ 'sales_rep.yaml': roleWith(name) }))).resolves.toBeDefined();
  });

  it('rejects filter or sort on a field without a plain column', async () => {
    const rule = '  - action: [filter, sort]\n    subject: Customer\n    fields: [city, email]\n';
    await expectProblem({ 'sales_rep.yaml': roleWith(rule) }, { file: 'sales_rep.yaml', line: 5, reason: /filter\/sort need a plain column: email/ });
  });

  it('loads a dataset, and reads datasets from a directory of their own when told', async () => {
    const dir = await fixture({ 'datasets/tiers.yaml': dataset });
    const bundle = await loadBundle(dir);
    expect(bundle.datasets.get('tiers')).toMatchObject({ purpose: 'contact', k: 5, consent: 'required' });
    const apart = await fixture({ 'elsewhere/tiers.yaml': dataset });
    expect((await loadBundle(apart, join(apart, 'elsewhere'))).version).toBe(bundle.version);
  });

  it.each([
    ['a direct identifier', '  - { name: phone, source: phone }\n', 6, /identifies a person directly/],
    ['the id other than as a pseudonym', '  - { name: customer, source: id }\n', 6, /only as transform: pseudonym/],
    ['a birth date without a band', '  - { name: born, source: birthDate }\n', 6, /needs a transform: age_band/],
    ['an unknown aggregate', '  - { name: total, aggregate: sum_amount }\n', 6, /unknown aggregate "sum_amount"/],
    ['an unknown source', '  - { name: owner, source: ownerId }\n', 6, /identifies a person directly/],
    ['a duplicate column', '  - { name: tier, source: segment }\n', 6, /duplicate column "tier"/],
  ])('rejects a dataset column naming %s, with its line', async (_what, column, line, reason) => {
    await expectProblem({ 'datasets/tiers.yaml': dataset + column }, { file: 'datasets/tiers.yaml', line, reason });
  });

  it('rejects a dataset with an unknown purpose, a bad k, or a generalization that does not fit its column', async () => {
    await expectProblem({ 'datasets/tiers.yaml': dataset.replace('purpose: contact', 'purpose: marketing') }, { file: 'datasets/tiers.yaml', line: 2, reason: /unknown purpose "marketing"/ });
    await expectProblem({ 'datasets/tiers.yaml': `${dataset}k: 1\n` }, { file: 'datasets/tiers.yaml', line: 6, reason: /k must be an integer from 2/ });
    await expectProblem({ 'datasets/tiers.yaml': `${dataset}generalization:\n  - { tier: region }\n` }, { file: 'datasets/tiers.yaml', line: 7, reason: /does not apply to tier/ });
    await expectProblem({ 'datasets/tiers.yaml': `${dataset}generalization:\n  - { pid: suppress }\n` }, { file: 'datasets/tiers.yaml', line: 7, reason: /not a quasi-identifier column/ });
    await expectProblem({ 'datasets/tiers.yaml': dataset.replace('dataset: tiers', 'dataset: other') }, { file: 'datasets/tiers.yaml', line: 1, reason: /does not match its file name/ });
  });

  it('rejects a missing purposes.yaml', async () => {
    await expectProblem({ 'purposes.yaml': null }, { file: 'purposes.yaml', line: 1, reason: /missing purposes\.yaml/ });
  });

  it('collects the problems of every file into one error', async () => {
    const dir = await fixture({ 'masking.yaml': 'Customer:\n  phone: { strategy: nope }\n', 'admin.yaml': 'role: admin\nrules:\n  - action: read\n    subject: Nope\n' });
    const error = await loadBundle(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PolicyBundleError);
    const { problems, message } = error as PolicyBundleError;
    expect(problems.map((p) => `${p.file.slice(dir.length + 1)}:${p.line}`).sort()).toEqual(['admin.yaml:4', 'masking.yaml:2']);
    expect(message).toContain(`${join(dir, 'admin.yaml')}:4: unknown subject "Nope"`);
  });
});
