import { spawnSync } from 'node:child_process';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { start } from '../src/boot.js';
import { loadConfig } from '../src/config.js';
import { signToken } from '../src/auth/authenticate.js';

function runMain(env: Record<string, string>) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('start', () => {
  it('refuses to start on a broken policy bundle, naming file, line and reason', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-policies-'));
    await cp('policies', dir, { recursive: true });
    await writeFile(join(dir, 'sales_rep.yaml'), 'role: sales_rep\nrules:\n  - action: read\n    subject: Customer\n    fields: [shoeSize]\n');
    const run = runMain({ POLICY_DIR: dir, DATA_DIR: 'memory://', PORT: '0' });
    await rm(dir, { recursive: true });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/sales_rep\.yaml:5/);
    expect(run.stderr).toMatch(/shoeSize/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses development secrets in production, naming the keys', () => {
    const run = runMain({ NODE_ENV: 'production', DATA_DIR: 'memory://', JWT_SECRET: '', KEYRING: '' });
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/JWKS_URL|JWT_SECRET/);
    expect(run.stderr).toMatch(/BLIND_INDEX_KEY/);
  });

  it('keeps data written by updateCustomer across a restart of the embedded database', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'custos-data-'));
    const config = loadConfig({ NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'silent' });
    const ask = async (port: number, query: string) => {
      const token = await signToken(config.auth, 'u-rep-1');
      const res = await fetch(`http://127.0.0.1:${port}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ query }),
      });
      const body: any = await res.json();
      return body;
    };
    let running = await start(config, { demoCustomers: 20 });
    const id = (await ask(running.port, '{ customers(first: 1) { edges { node { id } } } }')).data.customers.edges[0].node.id;
    const updated = await ask(running.port, `mutation { updateCustomer(id: "${id}", input: { email: "kept@example.cn" }) { id } }`);
    expect(updated.data.updateCustomer.id).toBe(id);
    await running.stop();
    running = await start(config, { demoCustomers: 20 });
    const after = await ask(running.port, `{ customer(id: "${id}") { email(purpose: CONTACT) } }`);
    await running.stop();
    await rm(dataDir, { recursive: true });
    expect(after.data.customer.email).toBe('kept@example.cn');
  });
});
