import { type SQL, sql } from 'drizzle-orm';
import postgres from 'postgres';
import { createDb, type Db, type DbHandle } from '../db/client.js';
import type { AuditEventInput } from './record.js';

export interface TestDb {
  handle: DbHandle;
  /** Opens another handle on the same database; null on PGlite, whose in-memory database has one. */
  reopen: (() => Promise<DbHandle>) | null;
  /** Its PostgreSQL URL; null on PGlite. */
  url: string | null;
  close(): Promise<void>;
}

/**
 * A migrated database for one test file: PGlite in memory, or, when
 * DATABASE_URL is set, a fresh PostgreSQL database beside it, dropped on close.
 */
export async function openTestDb(): Promise<TestDb> {
  const base = process.env.DATABASE_URL;
  if (!base) {
    const handle = await createDb({ kind: 'pglite', dataDir: 'memory://' });
    await handle.migrate();
    return { handle, reopen: null, url: null, close: () => handle.close() };
  }
  const name = `audit_scratch_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;
  await adminQuery(base, `CREATE DATABASE ${name}`);
  const url = new URL(base);
  url.pathname = `/${name}`;
  const open = () => createDb({ kind: 'postgres', url: url.toString(), poolMax: 10 });
  const handle = await open();
  await handle.migrate();
  return {
    handle,
    reopen: open,
    url: url.toString(),
    close: async () => {
      await handle.close();
      await adminQuery(base, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
    },
  };
}

async function adminQuery(url: string, statement: string): Promise<void> {
  const admin = postgres(url, { max: 1, onnotice: () => undefined });
  try {
    await admin.unsafe(statement);
  } finally {
    await admin.end();
  }
}

/** A plausible read event; override what a test is about. */
export function auditEvent(overrides: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    principalId: 'u-rep-1',
    roles: ['sales_rep'],
    action: 'read',
    subject: 'Customer',
    recordIds: ['0b7e1c52-8a55-4c39-9d7e-3f1f2a6b9c01'],
    fields: { raw: ['name', 'city'], masked: ['phone'], revealed: [], denied: [] },
    purpose: null,
    decision: 'allow',
    reason: null,
    policyVersion: 'sha256:5f1c0d',
    ...overrides,
  };
}

/** Runs a statement the way an attacker with owner rights would: append-only trigger off, then back on. */
export async function asOwner(db: Db, statement: SQL): Promise<void> {
  await db.execute(sql`alter table audit_events disable trigger all`);
  try {
    await db.execute(statement);
  } finally {
    await db.execute(sql`alter table audit_events enable always trigger audit_events_append_only`);
  }
}
