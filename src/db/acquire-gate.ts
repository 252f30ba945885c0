/**
 * Why a caller got no database connection in time. Carries SQLSTATE 08001
 * (sqlclient_unable_to_establish_sqlconnection), a connection-level failure,
 * so the one error formatter answers SERVICE_UNAVAILABLE like any other outage.
 */
export class AcquireTimeoutError extends Error {
  override name = 'AcquireTimeoutError';
  readonly code = '08001';
  constructor(readonly waitedMs: number) {
    super(`no database connection became free within ${waitedMs} ms`);
  }
}

export interface AcquireGateStats {
  /** Slots held now: statements running and transactions open. */
  inUse: number;
  /** Callers waiting for a slot now. */
  waiting: number;
  /** Callers refused since start because no slot became free before the deadline. */
  timeouts: number;
}

interface Waiter {
  grant(): void;
}

/**
 * Counts work that holds a pooled connection (one statement, or one whole
 * transaction) against the pool size, and refuses callers that find no free
 * slot within the deadline. postgres.js itself would queue them, or pipeline
 * them behind a busy connection, without any limit on the wait.
 * A slot freed by one caller passes straight to the longest waiter (FIFO).
 */
export class AcquireGate {
  private inUse = 0;
  private timeouts = 0;
  /** Insertion-ordered: the first entry is the longest waiter; a timed-out waiter leaves in O(1). */
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly opts: { slots: number; timeoutMs: number }) {
    if (!Number.isInteger(opts.slots) || opts.slots < 1) throw new RangeError('slots must be a positive integer');
    if (!(opts.timeoutMs > 0)) throw new RangeError('timeoutMs must be positive');
  }

  /** Runs `work` once a slot is free, holding the slot until it settles; rejects with AcquireTimeoutError past the deadline. */
  run<T>(work: () => PromiseLike<T>): Promise<T> {
    if (this.inUse < this.opts.slots && this.waiters.size === 0) {
      this.inUse += 1;
      return this.hold(work);
    }
    return this.wait().then(() => this.hold(work));
  }

  stats(): AcquireGateStats {
    return { inUse: this.inUse, waiting: this.waiters.size, timeouts: this.timeouts };
  }

  private async hold<T>(work: () => PromiseLike<T>): Promise<T> {
    try {
      return await work();
    } finally {
      this.release();
    }
  }

  private wait(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        this.timeouts += 1;
        reject(new AcquireTimeoutError(this.opts.timeoutMs));
      }, this.opts.timeoutMs);
      this.waiters.add(waiter);
    });
  }

  private release(): void {
    const next = this.waiters.values().next();
    if (next.done) {
      this.inUse -= 1;
      return;
    }
    // The slot changes hands without being counted free, so no newcomer can overtake a waiter.
    this.waiters.delete(next.value);
    next.value.grant();
  }
}
