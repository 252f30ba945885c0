import { performance } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuditLogStats } from '../audit/store.js';
import type { SpanQueueStats } from '../telemetry/span-queue.js';

/**
 * Prometheus metrics of one server instance. Labels are bounded enums
 * (operation type, outcome, subject, decision): never ids or values.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'custos_graphql_requests_total',
    help: 'GraphQL requests by operation type and outcome',
    labelNames: ['operation', 'outcome'] as const,
    registers: [this.registry],
  });
  /** Requests read and not yet answered: 0 when the replica is idle, whatever its counters were reading mid-flight. */
  readonly inFlight = new Gauge({
    name: 'custos_graphql_requests_in_flight',
    help: 'GraphQL requests received and not yet answered',
    registers: [this.registry],
  });
  readonly latency = new Histogram({
    name: 'custos_graphql_request_duration_seconds',
    help: 'GraphQL request latency by operation type and outcome',
    labelNames: ['operation', 'outcome'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [this.registry],
  });
  /** Strict audit: every audited request waits for its records' group commit before its reply. */
  readonly auditWait = new Histogram({
    name: 'custos_audit_commit_wait_seconds',
    help: "Time a request waited for its audit records' group commit, by outcome (committed, failed)",
    labelNames: ['outcome'] as const,
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15],
    registers: [this.registry],
  });
  readonly decisions = new Counter({
    name: 'custos_enforcement_decisions_total',
    help: 'Enforcement decisions by subject, action and decision',
    labelNames: ['subject', 'action', 'decision'] as const,
    registers: [this.registry],
  });
  readonly exportedRows = new Counter({
    name: 'custos_export_rows_total',
    help: 'Rows sent by the export stream, by kind (dataset or customers)',
    labelNames: ['kind'] as const,
    registers: [this.registry],
  });
  readonly faults = new Counter({
    name: 'custos_enforcement_faults_total',
    help: 'Rows or cells where the in-memory re-check disagreed with SQL (dropped)',
    registers: [this.registry],
  });

  constructor(sources: {
    statements: () => number;
    /** The audit log's counters (absent with no audit log: its queue and failures read 0, the rest is not registered). */
    auditLog?: () => AuditLogStats;
    /** The span export queue's counters (all zero when no collector is configured). */
    spans: () => SpanQueueStats;
    /** Pooled connection slots (PostgreSQL's acquire gate); absent, the pool gauges are not registered. */
    pool?: () => { inUse: number; waiting: number; timeouts: number };
  }) {
    collectDefaultMetrics({ register: this.registry });
    const gauge = (name: string, help: string, read: () => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          this.set(read());
        },
      });
    gauge('custos_db_statements_total', 'SQL statements sent to the database since start', sources.statements);
    // Its rate is the event-loop utilization: near 1 the process is saturated (requests queue for the one
    // thread that runs JavaScript) whatever its CPU share reads; well below 1 under load, requests are waiting
    // on something else (the database, the audit group commit). A counter, so that PromQL's rate() applies.
    let busyCounted = 0;
    new Counter({
      name: 'custos_event_loop_busy_seconds_total',
      help: 'Time the event loop spent running callbacks rather than waiting for I/O, since start',
      registers: [this.registry],
      collect() {
        const busy = performance.eventLoopUtilization().active / 1000;
        this.inc(Math.max(0, busy - busyCounted));
        busyCounted = Math.max(busy, busyCounted);
      },
    });
    // With a collector configured, every span ended is in exactly one of the four: a reader can tell how many spans
    // requests produced (the sum's delta) apart from how many the collector got.
    gauge('custos_spans_exported_total', 'Spans the collector accepted', () => sources.spans().exported);
    gauge('custos_spans_failed_total', 'Spans in export batches the collector refused or never answered', () => sources.spans().failed);
    gauge('custos_spans_dropped_total', 'Spans refused because the export queue was full', () => sources.spans().dropped);
    gauge('custos_spans_pending', 'Spans ended but not yet exported (queued or in the batch being sent)', () => sources.spans().pending);
    const audit = sources.auditLog;
    gauge('custos_audit_queue', 'Audit records accepted but not yet committed', () => audit?.().queued ?? 0);
    gauge('custos_audit_failures_total', 'Audit flushes that failed (requests refused in strict mode)', () => audit?.().failures ?? 0);
    if (audit) {
      // Their ratio is the group commit's batch size.
      gauge('custos_audit_records_total', 'Audit records committed', () => audit().appended);
      gauge('custos_audit_commits_total', 'Audit transactions committed (one per group commit)', () => audit().batches);
      gauge('custos_audit_index_merges_total', 'Merges of the audit record-id index pending list into the index', () => audit().indexMerges);
      gauge('custos_audit_index_merges_skipped_total', 'Merges skipped because another process was merging', () => audit().indexMergesSkipped);
      gauge('custos_audit_index_merge_failures_total', 'Merges that failed (record ids stay findable, unmerged)', () => audit().indexMergeFailures);
    }
    const pool = sources.pool;
    if (pool) {
      gauge('custos_db_pool_in_use', 'Pooled database connections held by a statement or a transaction', () => pool().inUse);
      gauge('custos_db_pool_waiting', 'Callers waiting for a free pooled connection', () => pool().waiting);
      gauge('custos_db_acquire_timeouts_total', 'Callers refused (SERVICE_UNAVAILABLE) because no pooled connection became free in time', () => pool().timeouts);
    }
  }
}
