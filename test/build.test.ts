import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildProject, buildServers } from '../bench/build.js';
import { imageNodeFlags } from '../bench/image.js';
import { repoRoot, startServer, stopAll } from '../bench/servers.js';
import { signToken } from '../src/auth/authenticate.js';
import { loadConfig } from '../src/config.js';

/**
 * The image runs custos compiled by tsc (tsconfig.build.json into dist/, then
 * `node dist/main.js`), and so does the benchmark (bench/build.ts). Every
 * other test runs the TypeScript through tsx, which transforms it with
 * esbuild, not tsc: the two emit decorators, class fields and module interop
 * each their own way. This builds what the image builds and checks that it
 * boots under plain node and still enforces the policy.
 */
describe('the compiled build', () => {
  it('boots from dist/main.js under plain node and serves policed reads', async () => {
    const built = await buildServers([repoRoot]);
    for (const file of [built.floor, built.graphqlProduction, built.cpuProfiler, built.gcWatch]) expect(existsSync(file)).toBe(true);
    const entry = built.custos.get(repoRoot)!;
    expect(entry).toBe(join(repoRoot, 'dist', 'main.js'));

    // Started as the bench starts its servers: a free port, /readyz awaited, its own environment only, the image's CMD flags.
    const nodeArgs = imageNodeFlags(readFileSync(join(repoRoot, 'Dockerfile'), 'utf8'));
    const server = await startServer({ variant: 'full', entry, nodeArgs, env: { DATA_DIR: 'memory://', LOG_LEVEL: 'warn', NODE_OPTIONS: '' } }, 60_000);
    try {
      const url = server.url;
      const ask = async (token: string | null) => {
        const res = await fetch(`${url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
          body: JSON.stringify({ query: '{ customers(first: 5) { edges { node { id name phone } } } }' }),
        });
        return (await res.json()) as { data?: { customers: { edges: { node: { id: string; name: string; phone: string | null } }[] } }; errors?: { extensions?: { code?: string } }[] };
      };
      const manager = await ask(await signToken(loadConfig({}).auth, 'u-mgr-1'));
      expect(manager.errors).toBeUndefined();
      const nodes = manager.data!.customers.edges.map((e) => e.node);
      expect(nodes.length).toBeGreaterThan(0);
      // A sales manager sees names, and phones only masked (policies/sales_manager.yaml).
      for (const node of nodes) {
        expect(node.name).toMatch(/\S/);
        expect(node.phone === null || /^\*+\d{4}$/.test(node.phone)).toBe(true);
      }
      const anonymous = await ask(null);
      expect(anonymous.data?.customers).toBeUndefined();
      expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    } finally {
      await stopAll();
    }
    expect(server.output()).not.toMatch(/\n\s+at /);
  }, 120_000);

  it('refuses a checkout without a build config, by name', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'custos-nobuild-'));
    try {
      expect(() => buildProject(dir)).toThrow(/tsconfig\.build\.json/);
    } finally {
      await rm(dir, { recursive: true });
    }
  });
});
