import { parseArgs } from 'node:util';
import { loadBundle } from '../authz/policy/bundle.js';
import { loadDatasetCases, runDatasetCase } from '../authz/dataset/cases.js';
import { describeResult, loadCases, runCase } from '../authz/policy/cases.js';
import { loadConfig } from '../config.js';

/**
 * `npm run policy:test [-- --dir policies]`: loads the bundle, runs every case
 * of every *.test.yaml beside it (roles and datasets/), prints the failures and one summary line.
 * Exit 1 on any failing case or invalid bundle.
 */
async function main(): Promise<number> {
  const { values } = parseArgs({ options: { dir: { type: 'string' } }, strict: true, allowPositionals: false });
  const dir = values.dir ?? loadConfig().policyDir;
  const bundle = await loadBundle(dir);
  const cases = await loadCases(bundle);
  let failed = 0;
  for (const policyCase of cases) {
    const result = runCase(bundle, policyCase);
    if (result.passed) continue;
    failed += 1;
    console.log(`FAIL ${describeResult(result)}`);
  }
  const datasetCases = await loadDatasetCases(bundle);
  for (const datasetCase of datasetCases) {
    const { failures } = runDatasetCase(datasetCase);
    if (failures.length === 0) continue;
    failed += 1;
    console.log(`FAIL ${datasetCase.name} (${datasetCase.origin.file}:${datasetCase.origin.line}): ${failures.join('; ')}`);
  }
  const total = cases.length + datasetCases.length;
  console.log(`${total - failed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    // Messages only, never a stack trace: a bad bundle lists every problem as file:line: reason.
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  },
);
