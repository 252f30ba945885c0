import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config.js';
import { pendingByKek, rotateKeys, RotationError } from '../src/crypto/rotate.js';
import { createDb } from '../src/db/client.js';
import { queryRows } from '../src/db/execute.js';
import type { CustomerPlain } from '../src/crypto/customer-record.js';
import { keysEnv, scratchDatabase, seedScratch, startKeyedServer, type KeyedServer, type ScratchDatabase } from './helpers/keyed-server.js';

/** One random key per KEK id, so a message can be searched for key material. */
const KEK = { a: randomBytes(32), b: randomBytes(32), c: randomBytes(32), d: randomBytes(32), e: randomBytes(32) };
const materials = Object.values(KEK).map((k) => k.toString('base64'));
const CUSTOMERS = 120;

const REVEAL = `query($id: ID!) { customer(id: $id) { id phone(purpose: DSR) email(purpose: DSR) idNumber(purpose: DSR) } }`;

async function keysByKek(server: KeyedServer) {
  return queryRows(server.db(), sql`SELECT kek_id, count(*)::int AS n, count(rotated_at)::int AS rotated FROM customer_keys GROUP BY kek_id`);
}

/** Every customer revealed by the dpo, page by page, compared with what was seeded (or updated since). */
async function expectEveryValueRevealed(server: KeyedServer, expected: Map<string, CustomerPlain>) {
  const seen = new Map<string, { phone: string | null; email: string | null; idNumber: string | null }>();
  let after: string | null = null;
  do {
    const res = await server.gql('u-dpo-1', `query($after: String) { customers(first: 100, after: $after) { edges { node { id phone(purpose: DSR) email(purpose: DSR) idNumber(purpose: DSR) } } pageInfo { hasNextPage endCursor } } }`, { after });
    expect(res.errors).toBeUndefined();
    for (const { node } of res.data.customers.edges) seen.set(node.id, node);
    after = res.data.customers.pageInfo.hasNextPage ? res.data.customers.pageInfo.endCursor : null;
  } while (after);
  expect(seen.size).toBe(expected.size);
  for (const [id, c] of expected) expect(seen.get(id), id).toEqual({ id, phone: c.phone, email: c.email, idNumber: c.idNumber });
}

describe(rotateKeys.name, () => {
  let server: KeyedServer;
  let expected: Map<string, CustomerPlain>;
  beforeAll(async () => {
    server = await startKeyedServer(keysEnv({ 'kek-a': KEK.a }, 'kek-a'), CUSTOMERS);
    expected = new Map(server.customers.map((c) => [c.id, { ...c }]));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it('re-wraps every data key under the active KEK while reveals and updates go on, losing nothing', async () => {
    // Rollout 1 and 2 of the procedure: both keys known, the new one active.
    await server.restart(keysEnv({ 'kek-a': KEK.a, 'kek-b': KEK.b }, 'kek-b'));
    let done = 0;
    let rotating = true;
    const rotation = rotateKeys(server.db(), server.config.keys.keyring, { batchSize: 5, pauseMs: 15, onProgress: (p) => (done = p.done) }).finally(() => {
      rotating = false;
    });
    const ids = [...expected.keys()];
    const revealedMidway: number[] = [];
    /** The phone a rectification under way is writing, by customer: committed before its reply comes back. */
    const writing = new Map<string, string>();
    /** The phones a reveal may show: the last one confirmed, or the one being written, when it was sent or answered. */
    const phonesNow = (id: string) => [expected.get(id)!.phone, writing.get(id)].filter((p): p is string => p !== undefined);
    const reader = async (worker: number) => {
      for (let i = worker; rotating; i += 7) {
        const id = ids[i % ids.length]!;
        const before = done;
        const allowed = phonesNow(id);
        const res = await server.gql('u-dpo-1', REVEAL, { id });
        expect(res.errors).toBeUndefined();
        allowed.push(...phonesNow(id));
        const c = expected.get(id)!;
        const { phone, ...rest } = res.data.customer as { phone: string };
        expect(allowed).toContain(phone);
        expect(rest).toEqual({ id, email: c.email, idNumber: c.idNumber });
        if (before > 0 && done < CUSTOMERS) revealedMidway.push(before);
      }
    };
    // Rectifications of a few customers while their keys are being re-wrapped.
    const writer = async () => {
      for (let n = 0; rotating; n++) {
        const id = ids[n % 10]!;
        const phone = `139${String(10_000_000 + n).padStart(8, '0')}`;
        writing.set(id, phone);
        const res = await server.gql('u-dpo-1', `mutation($id: ID!, $phone: String!) { updateCustomer(id: $id, input: { phone: $phone }) { id } }`, { id, phone });
        expect(res.errors).toBeUndefined();
        expected.get(id)!.phone = phone;
        writing.delete(id);
      }
    };
    const [summary] = await Promise.all([rotation, reader(0), reader(1), reader(2), writer()]);
    expect(summary).toMatchObject({ activeKekId: 'kek-b', rewrapped: CUSTOMERS, remaining: 0, interrupted: false });
    expect(summary.pendingAtStart).toEqual(new Map([['kek-a', CUSTOMERS]]));
    expect(revealedMidway.length).toBeGreaterThan(0);
    expect(await keysByKek(server)).toEqual([{ kek_id: 'kek-b', n: CUSTOMERS, rotated: CUSTOMERS }]);
    await expectEveryValueRevealed(server, expected);
  });

  it('reveals every value once the old KEK is removed from KEYRING', async () => {
    await server.restart(keysEnv({ 'kek-b': KEK.b }, 'kek-b'));
    await expectEveryValueRevealed(server, expected);
    const manager = await server.gql('u-mgr-1', `{ customers(first: 100) { edges { node { id phone(purpose: CONTACT) } } } }`);
    expect(manager.errors).toBeUndefined();
    expect(manager.data.customers.edges.length).toBeGreaterThan(0);
    for (const { node } of manager.data.customers.edges) expect(node.phone).toBe(expected.get(node.id)!.phone);
  });

  it('resumes an interrupted rotation where it stopped and completes it', async () => {
    await server.restart(keysEnv({ 'kek-b': KEK.b, 'kek-c': KEK.c }, 'kek-c'));
    const stop = new AbortController();
    const first = await rotateKeys(server.db(), server.config.keys.keyring, { batchSize: 10, signal: stop.signal, onProgress: () => stop.abort() });
    expect(first).toMatchObject({ rewrapped: 10, remaining: CUSTOMERS - 10, batches: 1, interrupted: true });
    expect(await pendingByKek(server.db(), 'kek-c')).toEqual(new Map([['kek-b', CUSTOMERS - 10]]));
    await expectEveryValueRevealed(server, expected);
    const second = await rotateKeys(server.db(), server.config.keys.keyring, { batchSize: 25 });
    expect(second).toMatchObject({ rewrapped: CUSTOMERS - 10, remaining: 0, interrupted: false });
    expect(await keysByKek(server)).toEqual([{ kek_id: 'kek-c', n: CUSTOMERS, rotated: CUSTOMERS }]);
  });

  it('lets two rotators run at once: they share the work and neither fails', async () => {
    await server.restart(keysEnv({ 'kek-c': KEK.c, 'kek-d': KEK.d }, 'kek-d'));
    const keyring = server.config.keys.keyring;
    const [one, two] = await Promise.all([rotateKeys(server.db(), keyring, { batchSize: 6 }), rotateKeys(server.db(), keyring, { batchSize: 6 })]);
    expect(one.rewrapped + two.rewrapped).toBe(CUSTOMERS);
    expect([one.remaining, two.remaining]).toEqual([0, 0]);
    await server.restart(keysEnv({ 'kek-d': KEK.d }, 'kek-d'));
    await expectEveryValueRevealed(server, expected);
  });

  it('refuses to start when a KEK still in use is missing from the keyring, naming it and its key count', async () => {
    const keyring = { keys: new Map([['kek-e', KEK.e]]), activeKekId: 'kek-e' };
    const refusal = rotateKeys(server.db(), keyring);
    await expect(refusal).rejects.toThrow(RotationError);
    await expect(refusal).rejects.toThrow(/kek-d \(120 keys\)/);
    await expect(rotateKeys(server.db(), { keys: new Map([['kek-d', KEK.d]]), activeKekId: 'kek-x' })).rejects.toThrow(/kek-x is not in KEYRING/);
    expect(await keysByKek(server)).toEqual([{ kek_id: 'kek-d', n: CUSTOMERS, rotated: CUSTOMERS }]);
  });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI the way `npm run` does, with only the given settings (no KEYRING or DATABASE_URL leaks in from the test's environment). */
function cli(script: string, args: string[], env: Record<string, string>): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', `src/cli/${script}.ts`, ...args],
      { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_ENV: 'test', LOG_LEVEL: 'silent', ...env }, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

function expectNoKeyMaterial(run: Run) {
  for (const m of materials) expect(`${run.stdout}${run.stderr}`.includes(m), 'key material in CLI output').toBe(false);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

describe('npm run keys:rotate', () => {
  let database: ScratchDatabase;
  let customers: CustomerPlain[];
  const old = keysEnv({ 'kek-a': KEK.a }, 'kek-a');
  const both = keysEnv({ 'kek-a': KEK.a, 'kek-b': KEK.b }, 'kek-b');
  beforeAll(async () => {
    database = await scratchDatabase();
    customers = await seedScratch(database, old, 30);
  });
  afterAll(async () => {
    await database?.drop();
  });

  const kekCounts = async () => {
    const handle = await createDb(loadConfig({ NODE_ENV: 'test', ...database.env }).database);
    try {
      return await queryRows(handle.db, sql`SELECT kek_id, count(*)::int AS n FROM customer_keys GROUP BY kek_id`);
    } finally {
      await handle.close();
    }
  };

  it('--dry-run counts the keys to re-wrap per KEK and changes nothing', async () => {
    const run = await cli('keys-rotate', ['--dry-run'], { ...database.env, ...both });
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/30 data keys would be re-wrapped under kek-b/);
    expect(run.stdout).toMatch(/kek-a: 30/);
    expect(await kekCounts()).toEqual([{ kek_id: 'kek-a', n: 30 }]);
  });

  it('exits non-zero naming KEK_ACTIVE_ID when the active KEK is not in KEYRING', async () => {
    const run = await cli('keys-rotate', [], { ...database.env, KEYRING: old.KEYRING, KEK_ACTIVE_ID: 'kek-missing' });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/KEK_ACTIVE_ID/);
    expectNoKeyMaterial(run);
  });

  it('exits non-zero naming a KEK in use that is missing from KEYRING and how many keys it wraps', async () => {
    const run = await cli('keys-rotate', [], { ...database.env, ...keysEnv({ 'kek-b': KEK.b }, 'kek-b') });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/kek-a \(30 keys\)/);
    expectNoKeyMaterial(run);
    const dry = await cli('keys-rotate', ['--dry-run'], { ...database.env, ...keysEnv({ 'kek-b': KEK.b }, 'kek-b') });
    expect(dry.code).toBe(1);
    expect(dry.stdout).toMatch(/kek-a: 30 \(not in KEYRING/);
  });

  it('exits 2 with the usage on a bad argument', async () => {
    // In parallel: a usage error exits before the database is opened.
    const runs = await Promise.all([['--batch', '0'], ['--batch', 'many'], ['--frobnicate']].map((args) => cli('keys-rotate', args, { ...database.env, ...both })));
    for (const run of runs) {
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/usage: npm run keys:rotate/);
    }
  });

  it('exits non-zero with the reason when the database is unreachable', async () => {
    const run = await cli('keys-rotate', [], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/custos', ...both });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/keys:rotate: failed: .*ECONNREFUSED/);
    expectNoKeyMaterial(run);
  });

  it('rotates in batches with progress on stderr, a summary, and 0 left', async () => {
    const run = await cli('keys-rotate', ['--batch', '8'], { ...database.env, ...both });
    expect(run.code).toBe(0);
    expect(run.stderr).toMatch(/30\/30 data keys re-wrapped \(100%\), \d+ keys\/s/);
    expect(run.stdout).toMatch(/re-wrapped 30 data keys under kek-b .*4 batches.*; 0 left/);
    expectNoKeyMaterial(run);
    expect(await kekCounts()).toEqual([{ kek_id: 'kek-b', n: 30 }]);
    const again = await cli('keys-rotate', [], { ...database.env, ...both });
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/nothing to rotate/);
  });

  describe('npm run keys:shred', () => {
    const env = () => ({ ...database.env, ...keysEnv({ 'kek-b': KEK.b }, 'kek-b') });

    it('refuses without --yes, and a malformed id, with the usage', async () => {
      const runs = await Promise.all([['--customer', customers[0]!.id], ['--customer', 'not-a-uuid', '--yes'], ['--yes']].map((args) => cli('keys-shred', args, env())));
      for (const run of runs) {
        expect(run.code).toBe(2);
        expect(run.stderr).toMatch(/usage: npm run keys:shred/);
      }
      expect(await kekCounts()).toEqual([{ kek_id: 'kek-b', n: 30 }]);
    });

    it('exits 1 on an unknown customer id', async () => {
      const run = await cli('keys-shred', ['--customer', '00000000-0000-4000-8000-000000000000', '--yes'], env());
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/no customer with id 00000000-0000-4000-8000-000000000000/);
    });

    it('destroys the key of the customer named, and only that one', async () => {
      const run = await cli('keys-shred', ['--customer', customers[0]!.id, '--yes'], env());
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/data key destroyed/);
      expect(await kekCounts()).toEqual([{ kek_id: 'kek-b', n: 29 }]);
    });
  });
});
