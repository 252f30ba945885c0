import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gql, startTestServer, type TestServer } from './helpers/server.js';

let server: TestServer;
let base: string;
let dir: string;
let analystToken: string;
beforeAll(async () => {
  server = await startTestServer({ customers: 300 });
  base = server.url.replace(/\/graphql$/, '');
  dir = mkdtempSync(join(tmpdir(), 'custos-export-'));
  analystToken = await server.token('u-analyst-1');
});
afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Values = Record<string, string | number | null>;

const PAGE = `query ($name: String!, $after: String) {
  dataset(name: $name, first: 100, after: $after) { nodes { values } pageInfo { hasNextPage endCursor } dataset { columns { name type } } }
}`;

/** Every released row of a dataset, pulled through GraphQL as the analyst. */
async function pullAll(name: string): Promise<{ rows: Values[]; columns: Array<{ name: string; type: string }> }> {
  const rows: Values[] = [];
  let after: string | null = null;
  for (;;) {
    const res = await gql(server, 'u-analyst-1', PAGE, { name, after });
    expect(res.json.errors, JSON.stringify(res.json.errors)).toBeUndefined();
    const page = res.json.data.dataset;
    rows.push(...page.nodes.map((n: { values: Values }) => n.values));
    if (!page.pageInfo.hasNextPage) return { rows, columns: page.dataset.columns };
    after = page.pageInfo.endCursor;
  }
}

const REQUEST = `mutation ($input: RequestExportInput!) { requestExport(input: $input) { id state } }`;
const APPROVE = `mutation ($id: ID!, $rowLimit: Int) { approveExport(id: $id, expiresInHours: 24, rowLimit: $rowLimit) { id state rowLimit } }`;
const GRANT = `query ($id: ID!) { exportRequest(id: $id) { state rowLimit rowsExported } }`;

/** A dataset export asked for by the analyst and approved by the dpo; returns the grant id. */
async function datasetGrant(opts: { dataset?: string; rowLimit?: number } = {}): Promise<string> {
  const input = { dataset: opts.dataset ?? 'customer_profile', purpose: 'ANALYTICS', rowLimit: 100_000, reason: 'churn model training, quarterly refresh' };
  const asked = await gql(server, 'u-analyst-1', REQUEST, { input });
  expect(asked.json.errors, JSON.stringify(asked.json.errors)).toBeUndefined();
  const approved = await gql(server, 'u-dpo-1', APPROVE, { id: asked.json.data.requestExport.id, rowLimit: opts.rowLimit ?? null });
  expect(approved.json.data.approveExport.state).toBe('APPROVED');
  return approved.json.data.approveExport.id;
}

async function grantState(id: string, principal = 'u-analyst-1') {
  return (await gql(server, principal, GRANT, { id })).json.data.exportRequest as { state: string; rowLimit: number; rowsExported: number };
}

interface Cli {
  child: ChildProcess;
  /** What it has written to stderr so far. */
  stderr: () => string;
  done: Promise<{ code: number | null; stdout: string; stderr: string }>;
}

/** The CLI as a user runs it (node + tsx, the same as `npm run export`), in a child process of its own. */
function cli(args: string[], opts: { url?: string; token?: string | null; env?: Record<string, string> } = {}): Cli {
  const token = opts.token === undefined ? ['--token', analystToken] : opts.token === null ? [] : ['--token', opts.token];
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/export.ts', '--url', opts.url ?? base, ...token, ...args], {
    env: { ...process.env, CUSTOS_TOKEN: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr })));
  return { child, done, stderr: () => stderr };
}

const run = (args: string[], opts?: Parameters<typeof cli>[1]) => cli(args, opts).done;

const ndjson = (file: string): Values[] =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => JSON.parse(l) as Values);

/** RFC 4180 records (quoted cells, doubled quotes, CRLF or LF). */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let cell = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted && c === '"' && text[i + 1] === '"') {
      cell += '"';
      i++;
    } else if (c === '"') {
      quoted = !quoted;
    } else if (!quoted && c === ',') {
      record.push(cell);
      cell = '';
    } else if (!quoted && c === '\n') {
      record.push(cell.replace(/\r$/, ''));
      records.push(record);
      record = [];
      cell = '';
    } else {
      cell += c;
    }
  }
  return records;
}

/** Rows as a sorted list of JSON texts: equal lists mean the same rows, each exactly as often. */
const multiset = (rows: Values[]) => rows.map((r) => JSON.stringify(r)).sort();

/** Forwards to the server; per request to /exports/ it may hold the request until released, or cut the reply mid-body. */
function proxy(plan: (n: number) => 'pass' | 'hold' | 'cut') {
  let n = 0;
  let release = () => {};
  const released = new Promise<void>((r) => (release = r));
  let onHold = () => {};
  const held = new Promise<void>((r) => (onHold = r));
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const action = req.url!.startsWith('/exports/') ? plan(++n) : 'pass';
    if (action === 'hold') {
      onHold();
      await released;
      if (res.destroyed || req.socket.destroyed) return;
    }
    const headers: Record<string, string> = {};
    for (const h of ['authorization', 'content-type']) if (req.headers[h]) headers[h] = String(req.headers[h]);
    const upstream = await fetch(`${base}${req.url}`, { method: req.method!, headers, ...(chunks.length ? { body: Buffer.concat(chunks) } : {}) });
    const body = Buffer.from(await upstream.arrayBuffer());
    const out: Record<string, string> = {};
    upstream.headers.forEach((value, key) => {
      if (key === 'content-type' || key.startsWith('x-export-')) out[key] = value;
    });
    res.writeHead(upstream.status, out);
    if (action === 'cut') {
      res.write(body.subarray(0, body.length >> 1));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    }
    res.end(body);
  };
  const http: Server = createServer((req, res) => void handle(req, res).catch(() => res.destroy()));
  return {
    held,
    release,
    start: () => new Promise<string>((resolve) => http.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(http.address() as { port: number }).port}`))),
    stop: () => {
      release();
      http.closeAllConnections();
      return new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

describe('npm run export', () => {
  it('writes every released row exactly once, then removes its state file and tells the totals', async () => {
    const grant = await datasetGrant();
    const out = join(dir, 'profile.ndjson');
    const res = await run(['--dataset', 'customer_profile', '--out', out, '--page', '37']);
    expect(res.code, res.stderr).toBe(0);
    const { rows } = await pullAll('customer_profile');
    expect(rows.length).toBeGreaterThan(50);
    expect(multiset(ndjson(out))).toEqual(multiset(rows));
    expect(new Set(ndjson(out).map((r) => r.pid)).size).toBe(rows.length);
    expect(existsSync(`${out}.export-state.json`)).toBe(false);
    expect(res.stdout).toContain(`exported ${rows.length} rows of grant ${grant}`);
    expect(await grantState(grant)).toMatchObject({ rowsExported: rows.length });
    expect(res.stdout + res.stderr).not.toContain(analystToken);
  });

  it('writes CSV that parses back to the same rows, with one header line', async () => {
    const grant = await datasetGrant();
    const out = join(dir, 'profile.csv');
    const res = await run(['--grant', grant, '--format', 'csv', '--out', out, '--page', '40'], { token: null, env: { CUSTOS_TOKEN: analystToken } });
    expect(res.code, res.stderr).toBe(0);
    const { rows, columns } = await pullAll('customer_profile');
    const [header, ...records] = parseCsv(readFileSync(out, 'utf8'));
    expect(header).toEqual(columns.map((c) => c.name));
    // Pseudonyms are hex and no dataset value starts like a formula, so every cell parses back as it was sent.
    const parsed = records.map((cells) => Object.fromEntries(columns.map((c, i) => [c.name, cells[i] === '' ? null : c.type === 'INT' ? Number(cells[i]) : (cells[i] ?? null)])));
    expect(multiset(parsed)).toEqual(multiset(rows));
  });

  it('resumes a run killed between pages with no duplicate and no gap, dropping a half-written page', async () => {
    const grant = await datasetGrant();
    const out = join(dir, 'killed.ndjson');
    const gate = proxy((n) => (n === 3 ? 'hold' : 'pass'));
    const url = await gate.start();
    try {
      const first = cli(['--dataset', 'customer_profile', '--out', out, '--page', '20'], { url });
      await gate.held;
      first.child.kill('SIGKILL');
      await first.done;
      const state = JSON.parse(readFileSync(`${out}.export-state.json`, 'utf8'));
      expect(state).toMatchObject({ grant, format: 'ndjson', rows: 40 });
      // A page cut short by the crash: the resumed run must drop it.
      appendFileSync(out, '{"pid":"half a page');
    } finally {
      await gate.stop();
    }
    const res = await run(['--dataset', 'customer_profile', '--out', out, '--page', '20']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('resuming after 40 rows');
    const { rows } = await pullAll('customer_profile');
    expect(multiset(ndjson(out))).toEqual(multiset(rows));
  });

  it('stops on Ctrl-C after the page under way, says how to resume, exits 130, and resumes', async () => {
    await datasetGrant();
    const out = join(dir, 'interrupted.ndjson');
    const gate = proxy((n) => (n === 2 ? 'hold' : 'pass'));
    const url = await gate.start();
    let stopped;
    try {
      const first = cli(['--dataset', 'customer_profile', '--out', out, '--page', '20'], { url });
      await gate.held;
      first.child.kill('SIGINT');
      while (!first.stderr().includes('stopping after the page under way')) await new Promise((r) => setTimeout(r, 20));
      gate.release();
      stopped = await first.done;
    } finally {
      await gate.stop();
    }
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toContain('stopped after 40 rows; run the same command again to resume');
    expect(ndjson(out)).toHaveLength(40);
    const res = await run(['--dataset', 'customer_profile', '--out', out, '--page', '20']);
    expect(res.code, res.stderr).toBe(0);
    expect(multiset(ndjson(out))).toEqual(multiset((await pullAll('customer_profile')).rows));
  });

  it('retries a page whose reply was cut off, and the lost page still counts against the grant', async () => {
    const grant = await datasetGrant();
    const out = join(dir, 'flaky.ndjson');
    const gate = proxy((n) => (n === 2 ? 'cut' : 'pass'));
    const url = await gate.start();
    const res = await run(['--dataset', 'customer_profile', '--out', out, '--page', '20'], { url }).finally(() => gate.stop());
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('retrying');
    const { rows } = await pullAll('customer_profile');
    expect(multiset(ndjson(out))).toEqual(multiset(rows));
    expect((await grantState(grant)).rowsExported).toBe(rows.length + 20);
  });

  it('gives up after repeated network failures, keeping what it has for the next run', async () => {
    await datasetGrant();
    const out = join(dir, 'down.ndjson');
    const gate = proxy((n) => (n === 1 ? 'pass' : 'cut'));
    const url = await gate.start();
    const res = await run(['--dataset', 'customer_profile', '--out', out, '--page', '20'], { url }).finally(() => gate.stop());
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/interrupted \(.+\) after 20 rows; run the same command again to resume/);
    expect(res.stderr).not.toMatch(/\n\s+at /);
    const again = await run(['--dataset', 'customer_profile', '--out', out, '--page', '20']);
    expect(again.code, again.stderr).toBe(0);
    expect(multiset(ndjson(out))).toEqual(multiset((await pullAll('customer_profile')).rows));
  });

  it('exports an identified customer list through --grant, as its holder reads it', async () => {
    const own = await gql(server, 'u-rep-1', '{ customers(first: 1) { edges { node { city } } } }');
    const city: string = own.json.data.customers.edges[0].node.city;
    const input = { customers: { filter: { city }, fields: ['name', 'city', 'tier', 'phone'] }, purpose: 'CONTACT', rowLimit: 1000, reason: 'call list for the spring campaign' };
    const asked = await gql(server, 'u-rep-1', REQUEST, { input });
    expect(asked.json.errors, JSON.stringify(asked.json.errors)).toBeUndefined();
    const approved = await gql(server, 'u-mgr-1', APPROVE, { id: asked.json.data.requestExport.id });
    expect(approved.json.data.approveExport.state).toBe('APPROVED');
    const out = join(dir, 'customers.ndjson');
    const res = await run(['--grant', approved.json.data.approveExport.id, '--out', out, '--page', '7'], { token: await server.token('u-rep-1') });
    expect(res.code, res.stderr).toBe(0);
    const seen = await gql(server, 'u-rep-1', `query ($city: String) { customers(first: 100, filter: { city: $city }) { edges { node { name city tier phone } } } }`, { city });
    const expected = seen.json.data.customers.edges.map((e: { node: Values }) => e.node);
    expect(expected.length).toBeGreaterThan(0);
    expect(multiset(ndjson(out))).toEqual(multiset(expected));
  });

  it('without an approved grant for the dataset: exit 2 and how to get one', async () => {
    const res = await run(['--dataset', 'regional_segments', '--out', join(dir, 'none.ndjson')]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('no approved export grant for dataset regional_segments; ask for one with requestExport and have it approved');
    expect(existsSync(join(dir, 'none.ndjson'))).toBe(false);
  });

  it('refuses to overwrite a file it is not exporting into, unless --force', async () => {
    await datasetGrant();
    const out = join(dir, 'precious.ndjson');
    writeFileSync(out, 'not an export\n');
    const res = await run(['--dataset', 'customer_profile', '--out', out]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('--force');
    expect(readFileSync(out, 'utf8')).toBe('not an export\n');
    const forced = await run(['--dataset', 'customer_profile', '--out', out, '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(ndjson(out).length).toBe((await pullAll('customer_profile')).rows.length);
  });

  it('refuses a revoked grant with its reason', async () => {
    const grant = await datasetGrant();
    const revoked = await gql(server, 'u-dpo-1', `mutation ($id: ID!) { revokeExport(id: $id, reason: "purpose ended") { state } }`, { id: grant });
    expect(revoked.json.data.revokeExport.state).toBe('REVOKED');
    const res = await run(['--grant', grant, '--out', join(dir, 'revoked.ndjson')]);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain('GRANT_REVOKED');
    expect(res.stderr).not.toMatch(/\n\s+at /);
  });

  it('refuses an expired grant with its reason', async () => {
    const grant = await datasetGrant();
    await server.running.db.db.execute(sql`update export_requests set expires_at = now() - interval '1 hour' where id = ${grant}::uuid`);
    const res = await run(['--grant', grant, '--out', join(dir, 'expired.ndjson')]);
    expect(res.code).toBe(3);
    expect(res.stderr).toContain('GRANT_EXPIRED');
  });

  it('stops at the grant cap with exactly the capped rows written, and says the grant is exhausted', async () => {
    const grant = await datasetGrant({ rowLimit: 50 });
    const out = join(dir, 'capped.ndjson');
    const res = await run(['--grant', grant, '--out', out, '--page', '20']);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toContain('GRANT_EXHAUSTED');
    const written = ndjson(out);
    expect(written).toHaveLength(50);
    expect(new Set(written.map((r) => r.pid)).size).toBe(50);
    expect(await grantState(grant)).toMatchObject({ state: 'EXHAUSTED', rowsExported: 50 });
  });

  it('refuses to let a requester approve their own export (FORBIDDEN)', async () => {
    const input = { customers: { filter: { city: server.customers[0]!.city }, fields: ['name', 'city'] }, purpose: 'CONTACT', rowLimit: 100, reason: 'my own list, approved by me' };
    const asked = await gql(server, 'u-mgr-1', REQUEST, { input });
    expect(asked.json.errors, JSON.stringify(asked.json.errors)).toBeUndefined();
    const self = await gql(server, 'u-mgr-1', APPROVE, { id: asked.json.data.requestExport.id });
    expect(self.json.errors[0].extensions.code).toBe('FORBIDDEN');
    expect((await grantState(asked.json.data.requestExport.id, 'u-mgr-1')).state).toBe('PENDING');
  });
});
