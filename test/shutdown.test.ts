import { spawn } from 'node:child_process';
import { request, type IncomingMessage } from 'node:http';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { signToken } from '../src/auth/authenticate.js';
import { loadConfig } from '../src/config.js';

const PORT = 40000 + (process.pid % 20000);

async function waitReady(url: string, deadline = Date.now() + 90_000): Promise<void> {
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error('server did not become ready');
}

describe('SIGTERM', () => {
  it('finishes the in-flight request, turns readiness 503, and exits 0', async () => {
    const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: 'memory://', PORT: String(PORT), HOST: '127.0.0.1', SHUTDOWN_DELAY_MS: '1500', LOG_LEVEL: 'warn' };
    delete env.DATABASE_URL;
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    const exited = once(child, 'exit');
    try {
      await waitReady(`http://127.0.0.1:${PORT}/readyz`);
      const token = await signToken(loadConfig({}).auth, 'u-mgr-1');
      const body = JSON.stringify({ query: '{ customers(first: 3) { totalCount edges { node { id } } } }' });
      // A slow client: headers and half the body now, the rest after SIGTERM.
      const req = request({ host: '127.0.0.1', port: PORT, path: '/graphql', method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), authorization: `Bearer ${token}` } });
      const response = once(req, 'response');
      req.write(body.slice(0, 20));
      await new Promise((r) => setTimeout(r, 200));
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 300));
      expect((await fetch(`http://127.0.0.1:${PORT}/readyz`)).status).toBe(503);
      expect((await fetch(`http://127.0.0.1:${PORT}/healthz`)).status).toBe(200);
      req.end(body.slice(20));
      const [res] = (await response) as [IncomingMessage];
      const chunks: Buffer[] = [];
      for await (const c of res) chunks.push(c as Buffer);
      const json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      expect(res.statusCode).toBe(200);
      expect(json.data.customers.edges.length).toBe(3);
      const [code] = await exited;
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
