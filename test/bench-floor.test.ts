import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as floorSql from '../bench/floor-sql.js';
import { auditScenario, bodiesOf, checkReply, idPool, post, scenarios, type GqlReply, type ScenarioKey } from '../bench/scenarios.js';
import { repoRoot, startServer, stopAll, type ServerHandle } from '../bench/servers.js';
import { trailOf } from '../src/audit/queries.js';
import type { Db } from '../src/db/client.js';
import { queryRows } from '../src/db/execute.js';
import { startTestServer, type TestServer } from './helpers/server.js';

/** The SQL text trailOf sends (the auditor's S5) through drizzle's session, and whether it goes as a named (prepared) statement. */
async function trailText(): Promise<{ text: string; prepared: boolean }> {
  const sent: Array<{ text: string; prepared: boolean }> = [];
  const capture = {
    _: {
      session: {
        prepareQuery: (query: { sql: string }, _fields: unknown, name: string | undefined) => {
          sent.push({ text: query.sql, prepared: name !== undefined });
          return { execute: () => Promise.resolve([]) };
        },
      },
    },
  };
  await trailOf(capture as unknown as Db, 'a-trace');
  expect(sent).toHaveLength(1);
  return sent[0]!;
}

describe("the floor's statements", () => {
  it("S5 is custos's auditor query, byte for byte, prepared as the floor prepares it", async () => {
    const { text, prepared } = await trailText();
    expect(floorSql.S5).toBe(text);
    expect(prepared).toBe(true);
  });
});

/**
 * The floor is the yardstick of full/floor: it must send custos's own SQL and
 * answer what custos answers. Policed reads run prepared on the reads pool,
 * so with DB_POOL_MAX=2 (one reads connection) pg_prepared_statements on
 * that connection lists every text custos sent for S1–S4.
 */
describe.skipIf(!process.env.DATABASE_URL)('the floor against custos (PostgreSQL)', () => {
  let server: TestServer;
  let floor: ServerHandle;
  let base: string;
  const replies = new Map<ScenarioKey, { custos: GqlReply; floor: GqlReply }>();

  beforeAll(async () => {
    server = await startTestServer({ customers: 150, env: { DB_POOL_MAX: '2' } });
    const db = server.config.database;
    if (db.kind !== 'postgres') throw new Error('expected PostgreSQL');
    base = server.url.replace(/\/graphql$/, '');
    floor = await startServer(
      { variant: 'floor', entry: 'bench/floor-server.ts', nodeArgs: ['--import', 'tsx'], env: { DATABASE_URL: db.url, DB_POOL_MAX: '4', LOG_LEVEL: 'silent' } },
      60_000,
    );
    const manager = await server.token('u-mgr-1');
    const ids = await idPool(base, manager, 5);
    expect(ids.length).toBeGreaterThan(0);
    for (const s of Object.values(scenarios)) {
      const [body] = bodiesOf(s, { ids });
      replies.set(s.key, { custos: await post(base, manager, body!), floor: await post(floor.url, manager, body!) });
    }
    // S5: the auditor reads the trail of the S4 request just made.
    const traceId = replies.get('S4')!.custos.json?.extensions?.traceId;
    const s5 = auditScenario(repoRoot);
    if (!('key' in s5) || !traceId) throw new Error('no S5 to run');
    const [body] = bodiesOf(s5, { ids, traceId });
    const auditor = await server.token('u-auditor-1');
    replies.set('S5', { custos: await post(base, auditor, body!), floor: await post(floor.url, auditor, body!) });
  }, 120_000);

  afterAll(async () => {
    await stopAll();
    await server?.stop();
  });

  it('sends, for S1–S4, the texts custos prepared on its reads connection', async () => {
    const prepared = await queryRows(server.running.db.reads, sql`select statement from pg_prepared_statements`);
    const texts = new Set(prepared.map((p) => String(p.statement)));
    for (const [name, text] of Object.entries({ S1: floorSql.S1, S2_CUSTOMERS: floorSql.S2_CUSTOMERS, S2_ORDERS: floorSql.S2_ORDERS, S3: floorSql.S3, S4: floorSql.S4 })) {
      expect(texts.has(text), `${name} is not among custos's statements:\n${text}\n\ncustos prepared:\n${[...texts].join('\n\n')}`).toBe(true);
    }
  });

  it('answers every scenario as custos does', () => {
    expect([...replies.keys()].sort()).toEqual(['S1', 'S2', 'S3', 'S4', 'S5']);
    for (const [key, { custos, floor: bare }] of replies) {
      expect(checkReply(key, 'full', custos), `custos ${key}`).toBeUndefined();
      expect(checkReply(key, 'floor', bare), `floor ${key}`).toBeUndefined();
      expect(bare.json?.data, key).toEqual(custos.json?.data);
    }
  });
});
