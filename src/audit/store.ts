import { sql, type SQL } from 'drizzle-orm';
import { bind, compile, runStatement, type Compiled } from '../authz/statements.js';
import type { Db } from '../db/client.js';
import { queryRows, toBuffer } from '../db/execute.js';
import { type AuditEventInput, type AuditRecord, canonicalBody, canonicalText, GENESIS_HASH, hashText, invalidReason } from './record.js';

/**
 * The advisory lock that serializes chain extension across every process and
 * replica writing to the same database ('custos' in ASCII). Held until commit,
 * so records also commit in seq order and readers never see a transient gap.
 */
export const CHAIN_LOCK_KEY = 0x637573746f73;

/** Held (transaction-scoped, never waited for) by whoever merges the record-id index's pending list (migration 0006). */
export const INDEX_MERGE_LOCK_KEY = CHAIN_LOCK_KEY + 1;

/** Why an append was refused. `cause` keeps the driver error for logs; the message never carries SQL or data. */
export class AuditStoreError extends Error {
  override name = 'AuditStoreError';
  constructor(
    readonly kind: 'invalid' | 'closed' | 'unavailable',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export interface AuditLogOptions {
  /** Soft cap on events per transaction: a flush takes whole append calls up to it (at least one call). */
  maxBatch?: number;
  logger?: { error(obj: object, msg: string): void };
  /** Longest one flush statement (the wait for the chain lock included) may take before its callers are rejected. */
  flushTimeoutMs?: number;
  /**
   * How long after a commit the record-id index's pending list is merged into
   * the index, off every request's path (default 200 ms; 0: never, and the
   * insert that fills the list merges it, as PostgreSQL does by default).
   * Shorter keeps each merge, and the CPU it takes from requests, small:
   * about 200 S1 reads' worth of ids at 1,000 req/s.
   */
  indexMergeDelayMs?: number;
}

export interface AuditLogStats {
  /** Events committed. */
  appended: number;
  /** Transactions committed (one per flush). */
  batches: number;
  /** Events accepted but not yet committed (waiting or in the flush under way). */
  queued: number;
  /** Flushes whose transaction failed (every append in them was rejected). */
  failures: number;
  /**
   * Flushes that took the chain lock and read the head: the first, and those after another
   * appender extended the chain or held the lock. The others were one INSERT after the known head.
   */
  locked: number;
  /** Background merges of the record-id index's pending list: done, skipped (another process was merging), failed. */
  indexMerges: number;
  indexMergesSkipped: number;
  indexMergeFailures: number;
  /** Pending-list pages the merges moved into the index. */
  indexPagesMerged: number;
}

interface ChainHead {
  seq: number;
  hash: Buffer;
  /** Its `at`: no later record may be earlier, whatever the clocks of the replicas say. */
  atMs: number;
}

/** Filled in by the log before an append resolves (see AuditLog.append). */
export interface AppendTiming {
  /**
   * How long the write of the group that committed the append took, ms: from
   * the statement sent to the commit answered. The rest of the caller's wait
   * is its turn behind the group ahead.
   */
  flushMs: number;
}

interface Pending {
  events: AuditEventInput[];
  /** Their canonical bodies, taken when they were accepted (see canonicalBody). */
  bodies: string[];
  timing: AppendTiming | undefined;
  resolve(records: AuditRecord[]): void;
  reject(error: AuditStoreError): void;
}

/**
 * The append side of the hash-chained audit trail, with group commit: append
 * calls made while a flush is under way are queued and written together by
 * the next flush, in one transaction and one INSERT. Create one per process.
 */
export class AuditLog {
  private readonly maxBatch: number;
  private readonly logger: AuditLogOptions['logger'];
  private readonly flushTimeoutMs: number;
  private queue: Pending[] = [];
  /** The last record this log committed: the next flush tries to link to it in one statement. */
  private head: ChainHead | null = null;
  private running: Promise<void> | null = null;
  private closed = false;
  private readonly indexMergeDelayMs: number;
  private mergeTimer: NodeJS.Timeout | null = null;
  private merging: Promise<void> | null = null;
  /** A commit happened since the last merge started: its record ids may still be pending. */
  private unmerged = false;
  private counters = {
    appended: 0,
    batches: 0,
    queued: 0,
    failures: 0,
    locked: 0,
    indexMerges: 0,
    indexMergesSkipped: 0,
    indexMergeFailures: 0,
    indexPagesMerged: 0,
  };

  constructor(
    private readonly db: Db,
    opts: AuditLogOptions = {},
  ) {
    this.maxBatch = Math.max(1, opts.maxBatch ?? 500);
    this.logger = opts.logger;
    this.flushTimeoutMs = Math.max(1, Math.floor(opts.flushTimeoutMs ?? 15_000));
    this.indexMergeDelayMs = Math.max(0, opts.indexMergeDelayMs ?? 200);
  }

  /**
   * Chains and stores the events; resolves only once they are committed, rejects (AuditStoreError) if they are not.
   * A `timing` given is filled in before it resolves.
   */
  append(events: AuditEventInput[], timing?: AppendTiming): Promise<AuditRecord[]> {
    if (this.closed) return Promise.reject(new AuditStoreError('closed', 'audit log is closed'));
    for (const [i, event] of events.entries()) {
      const reason = invalidReason(event);
      if (reason) return Promise.reject(new AuditStoreError('invalid', `audit event ${i}: ${reason}`));
    }
    if (events.length === 0) return Promise.resolve([]);
    return new Promise<AuditRecord[]>((resolve, reject) => {
      // The bodies are the snapshot that gets hashed: a caller changing its arrays afterwards changes nothing stored.
      this.queue.push({ events, bodies: events.map(canonicalBody), timing, resolve, reject });
      this.counters.queued += events.length;
      this.schedule();
    });
  }

  /** Resolves once everything appended so far has been committed or rejected. */
  async flush(): Promise<void> {
    while (this.running || this.queue.length > 0) {
      this.schedule();
      await this.running;
    }
  }

  /** Flushes what is queued, then refuses further appends; a merge under way is waited for, none is started. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    if (this.mergeTimer) clearTimeout(this.mergeTimer);
    this.mergeTimer = null;
    await this.merging;
  }

  /**
   * Merges the record-id index's pending list into the index now (what the
   * background merge does after each commit). Resolves to the pages merged,
   * or -1 when nothing was merged: another process was merging, or the merge
   * failed (counted and logged apart). Never rejects: unmerged ids stay
   * findable in the pending list.
   */
  async mergeIndex(): Promise<number> {
    this.unmerged = false;
    try {
      const [row] = await queryRows(this.db, sql`select audit_merge_pending_record_ids()::float8 as pages`);
      const pages = row!.pages as number;
      if (pages < 0) this.counters.indexMergesSkipped += 1;
      else {
        this.counters.indexMerges += 1;
        this.counters.indexPagesMerged += pages;
      }
      return pages;
    } catch (cause) {
      this.counters.indexMergeFailures += 1;
      this.report('audit index merge failed', cause);
      return -1;
    }
  }

  stats(): AuditLogStats {
    return { ...this.counters };
  }

  private schedule(): void {
    if (this.running) return;
    this.running = this.drain().finally(() => {
      this.running = null;
      // An append that arrived after the last loop check must not wait for the next caller.
      if (this.queue.length > 0) this.schedule();
    });
  }

  private async drain(): Promise<void> {
    // Yield one turn so callers of the same tick share the first transaction.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.queue.length > 0) await this.flushBatch(this.takeBatch());
  }

  private takeBatch(): Pending[] {
    let size = 0;
    let n = 0;
    while (n < this.queue.length && (n === 0 || size + this.queue[n]!.events.length <= this.maxBatch)) {
      size += this.queue[n]!.events.length;
      n += 1;
    }
    return this.queue.splice(0, n);
  }

  private async flushBatch(batch: Pending[]): Promise<void> {
    const events: Accepted = { events: batch.flatMap((p) => p.events), bodies: batch.flatMap((p) => p.bodies) };
    try {
      const started = performance.now();
      const records = (this.head && (await appendAfter(this.db, events, this.head))) || (await this.appendLocked(events));
      const flushMs = performance.now() - started;
      const last = records.at(-1)!;
      this.head = { seq: last.seq, hash: last.hash, atMs: last.at.getTime() };
      this.counters.batches += 1;
      this.counters.appended += records.length;
      this.unmerged = true;
      this.scheduleMerge();
      let offset = 0;
      for (const pending of batch) {
        if (pending.timing) pending.timing.flushMs = flushMs;
        pending.resolve(records.slice(offset, offset + pending.events.length));
        offset += pending.events.length;
      }
    } catch (cause) {
      this.head = null;
      this.counters.failures += 1;
      const error = new AuditStoreError('unavailable', 'audit store unavailable: records not written', { cause });
      for (const pending of batch) pending.reject(error);
      this.report('audit append failed', cause, events.events.length);
    } finally {
      this.counters.queued -= events.events.length;
    }
  }

  private appendLocked(events: Accepted): Promise<AuditRecord[]> {
    this.counters.locked += 1;
    return this.db.transaction((tx) => writeChained(tx, events, this.flushTimeoutMs));
  }

  /** One timer at a time; a merge still running when it fires is not doubled, and re-arms the timer if commits came meanwhile. */
  private scheduleMerge(): void {
    if (this.indexMergeDelayMs === 0 || this.mergeTimer || this.closed) return;
    this.mergeTimer = setTimeout(() => {
      this.mergeTimer = null;
      this.merging ??= this.mergeIndex().then(() => {
        this.merging = null;
        if (this.unmerged) this.scheduleMerge();
      });
    }, this.indexMergeDelayMs);
    // A pending merge never keeps the process alive: the ids stay findable unmerged.
    this.mergeTimer.unref();
  }

  private report(msg: string, cause: unknown, events?: number): void {
    try {
      this.logger?.error({ err: describeError(cause), ...(events === undefined ? {} : { events }) }, msg);
    } catch {
      // A failing logger must not stall the queue: the callers already have the error.
    }
  }
}

/** Inside one transaction: lock the chain, read its head, link the events to it, insert them in one statement. */
async function writeChained(tx: Db, events: Accepted, timeoutMs: number): Promise<AuditRecord[]> {
  // One round trip for three statements, still three statements, in this order (each starts in the turn queryRows is
  // called in, in call order: postgres.js pipelines them in one write):
  // the timeout bounds the wait for a stuck lock holder too (callers fail closed instead of hanging),
  // and the head is read by a separate statement after the lock, so under READ COMMITTED it sees
  // the head committed by the previous holder.
  const [, , [head]] = await Promise.all([
    queryRows(tx, sql.raw(`set local statement_timeout = ${timeoutMs}`)),
    queryRows(tx, sql`select pg_advisory_xact_lock(${sql.raw(String(CHAIN_LOCK_KEY))})`),
    queryRows(
      tx,
      sql`select s.seq::text as seq, s.hash, (extract(epoch from s.at) * 1000)::float8 as at_ms,
                 (extract(epoch from clock_timestamp()) * 1000)::float8 as now_ms
          from (select 1) as one
          left join lateral (select seq, hash, at from audit_events order by seq desc limit 1) as s on true`,
    ),
  ]);
  const found: ChainHead | null =
    head!.seq === null ? null : { seq: Number(head!.seq), hash: toBuffer(head!.hash)!, atMs: head!.at_ms as number };
  const chained = chain(events, found, head!.now_ms as number);
  await runStatement(tx, bind(INSERT, insertValues(chained)));
  return chained.records;
}

/** Accepted events with their canonical bodies, in chain order. */
interface Accepted {
  events: AuditEventInput[];
  bodies: string[];
}

/** Records linked after a head, and the canonical text each hash was taken over. */
interface Chained {
  records: AuditRecord[];
  texts: string[];
}

/**
 * Links the events after `head` (or the genesis). `at` never goes back along
 * seq: the clock of whoever writes is taken, unless the head is later.
 */
function chain({ events, bodies }: Accepted, head: ChainHead | null, clockMs: number): Chained {
  const at = new Date(Math.max(Math.floor(clockMs), head?.atMs ?? 0));
  let seq = head?.seq ?? 0;
  let prevHash = head?.hash ?? GENESIS_HASH;
  const texts: string[] = [];
  const records = events.map((event, i): AuditRecord => {
    seq += 1;
    const text = canonicalText(seq, at, bodies[i]!);
    const hash = hashText(prevHash, text);
    // Object.assign, not a spread followed by new keys: V8 (Node 20) took ~5 µs per record for that, this ~0.3.
    const record: AuditRecord = Object.assign({}, event, { seq, at, prevHash, hash });
    texts.push(text);
    prevHash = hash;
    return record;
  });
  return { records, texts };
}

/**
 * The INSERT of chained records, the columns read from the canonical texts
 * themselves (type audit_canonical_v1 names its fields as the text does), the
 * hashes beside them in the same order. `where` guards the optimistic path.
 * Its text never changes: it is compiled once (below), not per append, and
 * runs as a prepared statement (src/authz/statements.ts).
 */
function insertChained(where?: SQL): SQL {
  return sql`insert into audit_events
      (seq, at, trace_id, span_id, principal_id, roles, action, subject, record_ids, fields, purpose, decision, reason, policy_version, prev_hash, hash)
    select c.seq, c.at, c."traceId", c."spanId", c."principalId", c.roles, c.action, c.subject, c."recordIds", c.fields,
           c.purpose, c.decision, c.reason, c."policyVersion", decode(h.value->>0, 'hex'), decode(h.value->>1, 'hex')
    from json_populate_recordset(null::audit_canonical_v1, ${sql.placeholder('texts')}::json) with ordinality as c
    join json_array_elements(${sql.placeholder('hashes')}::json) with ordinality as h on h.ordinality = c.ordinality
    ${where ? sql`where ${where} returning seq` : sql``}`;
}

/** The values of the INSERT's placeholders: the records' canonical texts and their hashes, as JSON arrays. */
function insertValues({ records, texts }: Chained): { texts: string; hashes: string } {
  return { texts: `[${texts.join(',')}]`, hashes: JSON.stringify(records.map((r) => [r.prevHash.toString('hex'), r.hash.toString('hex')])) };
}

/** Inside the locked transaction. */
const INSERT: Compiled = compile(insertChained());

/**
 * The optimistic path's: it inserts only if the chain lock is free right now
 * and the head it links to (placeholders `seq`, `hash`) is still the head.
 * The head check runs inside audit_chain_head_is (migration 0007), planned
 * there as a primary-key probe: written here, PostgreSQL planned it as a
 * sequential scan while the trail's statistics said it was a few pages, and
 * the statement's cached plan then read the whole trail on every append until
 * the next ANALYZE.
 */
const INSERT_AFTER: Compiled = compile(
  insertChained(sql`(select pg_try_advisory_xact_lock(${sql.raw(String(CHAIN_LOCK_KEY))}))
    and audit_chain_head_is(${sql.placeholder('seq')}, ${sql.placeholder('hash')})`),
);

/**
 * The common case in one statement, no transaction: links the events after
 * the head this log last committed and inserts them, provided the chain lock
 * is free right now and that head is still there. Returns null when either
 * fails, or when another appender has extended the chain since (the primary
 * key refuses the taken seq), and the caller goes the locked way. Holding the
 * lock while inserting keeps this writer out of a locked appender's way; a
 * busy lock is never waited for here, so nothing can hang on this path.
 */
async function appendAfter(db: Db, events: Accepted, head: ChainHead): Promise<AuditRecord[] | null> {
  const chained = chain(events, head, Date.now());
  try {
    const rows = await runStatement(db, bind(INSERT_AFTER, { ...insertValues(chained), seq: head.seq, hash: head.hash }));
    return rows.length === chained.records.length ? chained.records : null;
  } catch (e) {
    if (sqlState(e) === UNIQUE_VIOLATION) return null;
    throw e;
  }
}

const UNIQUE_VIOLATION = '23505';

function sqlState(error: unknown): string | undefined {
  const cause = (error as { cause?: unknown } | null)?.cause ?? error;
  const code = (cause as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Name and SQLSTATE only: drizzle's query errors quote the SQL and its parameters. */
function describeError(error: unknown): { name: string; code?: string } {
  const cause = (error as { cause?: unknown } | null)?.cause ?? error;
  const name = cause instanceof Error ? cause.name : typeof cause;
  const code = sqlState(error);
  return code === undefined ? { name } : { name, code };
}
