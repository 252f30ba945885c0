import { describe, expect, it } from 'vitest';
import { collectorLine, figuresOf, renderPgPools, type Measurement } from '../bench/report.js';
import { poolOf, postgresCpuByPool, postgresDelta } from '../bench/servers.js';

/** A window as the orchestrator records it, with only what figuresOf reads made to vary. */
function window(variant: Measurement['variant'], requests: number, durationSec: number, benchCpuMs: number | undefined): Measurement {
  return {
    scenario: 'S3',
    variant,
    connections: 16,
    round: 1,
    load: { requests, durationSec, rps: requests / durationSec, p50: 1, p90: 2, p99: 3, max: 4, non2xx: 0, transportErrors: 0, graphqlErrors: 0 },
    statements: requests,
    served: requests,
    spans: variant === 'full' ? { ended: 3 * requests, dropped: 0 } : null,
    serverCpuMs: requests,
    postgresCpuMs: requests / 2,
    loadgenCpuMs: 100,
    ...(benchCpuMs === undefined ? {} : { benchCpuMs }),
    rssMb: 180,
  };
}

describe("bench report: the bench's own CPU (the stand-in collector)", () => {
  it('gives per request and as a share of one core, summed over the rounds', () => {
    const full = figuresOf([window('full', 6000, 5, 420), window('full', 4000, 5, 280)]);
    // 700 ms over 10,000 requests and 10 s.
    expect(full.benchCpu!.msPerRequest).toBeCloseTo(0.07, 10);
    expect(full.benchCpu!.pctOfCore).toBeCloseTo(7, 10);
    const line = collectorLine({ cells: { '16': { S3: { full, off: figuresOf([window('off', 9000, 5, 5)]) } } } });
    expect(line).toBe("Stand-in collector (the bench's own process) during full's windows: S3 0.070 ms per request (7.0 % of a core)");
  });

  it('says nothing for results recorded before it was measured, or a window that lacks it', () => {
    const old = figuresOf([window('full', 6000, 5, undefined)]);
    expect(old.benchCpu).toBeNull();
    expect(figuresOf([window('full', 6000, 5, 300), window('full', 6000, 5, undefined)]).benchCpu).toBeNull();
    expect(collectorLine({ cells: { '16': { S3: { full: old } } } })).toBeUndefined();
    expect(collectorLine({ cells: { '16': { S3: { full: { na: 'sample check failed' } } } } })).toBeUndefined();
  });

  it('names each scenario with its connection count when several ran', () => {
    const cell = figuresOf([window('full', 1000, 1, 50)]);
    expect(collectorLine({ cells: { '16': { S3: { full: cell } }, '64': { S3: { full: cell } } } })).toBe(
      "Stand-in collector (the bench's own process) during full's windows: S3@16 0.050 ms per request (5.0 % of a core), S3@64 0.050 ms per request (5.0 % of a core)",
    );
  });
});

describe("bench report: PostgreSQL's CPU by pool", () => {
  const split = (m: Measurement, reads: number, other: number): Measurement => ({ ...m, postgresCpuByPool: { reads, other } });

  it('charges each backend to the pool its application name says, an unnamed one to the other', () => {
    expect(poolOf('custos-reads')).toBe('reads');
    expect(poolOf('custos-floor-reads')).toBe('reads');
    expect(poolOf('custos')).toBe('other');
    expect(poolOf('custos-floor')).toBe('other');
    expect(poolOf('')).toBe('other');
    const before = new Map([
      [1, { cpuMs: 100, runQueueWaitMs: 0 }],
      [2, { cpuMs: 50, runQueueWaitMs: 0 }],
    ]);
    // 3 is new (counts whole), 4 has no name (other), 5 ended before the end (lost, as in postgresDelta).
    const after = new Map([
      [1, { cpuMs: 130, runQueueWaitMs: 0 }],
      [2, { cpuMs: 60, runQueueWaitMs: 0 }],
      [3, { cpuMs: 7, runQueueWaitMs: 0 }],
      [4, { cpuMs: 2, runQueueWaitMs: 0 }],
    ]);
    const names = new Map([
      [1, 'custos-reads'],
      [2, 'custos'],
      [3, 'custos-reads'],
      [5, 'custos'],
    ]);
    expect(postgresCpuByPool(before, after, names)).toEqual({ reads: 37, other: 12 });
    expect(postgresDelta(before, after, 'cpuMs')).toBe(49);
  });

  it('gives it per request over the rounds, and no split when a window lacks one', () => {
    const full = figuresOf([split(window('full', 6000, 5, 1), 600, 1200), split(window('full', 4000, 5, 1), 400, 800)]);
    expect(full.pgCpuMsPerRequestByPool!.reads).toBeCloseTo(0.1, 10);
    expect(full.pgCpuMsPerRequestByPool!.other).toBeCloseTo(0.2, 10);
    expect(figuresOf([split(window('full', 6000, 5, 1), 600, 1200), window('full', 4000, 5, 1)]).pgCpuMsPerRequestByPool).toBeNull();
  });

  it('renders each scenario and connection count with the variants side by side, and nothing for older results', () => {
    const off = figuresOf([split(window('off', 1000, 1, 1), 100, 1)]);
    const full = figuresOf([split(window('full', 1000, 1, 1), 110, 90)]);
    const text = renderPgPools({ cells: { '16': { S3: { full, off, floor: { na: 'sample check failed' } } } } })!;
    expect(text).toContain('### PostgreSQL CPU by pool (ms per request)');
    expect(text).toMatch(/\| S3 +\| 16 +\| 0\.110 +\| 0\.090 +\| 0\.100 +\| 0\.001 +\| n\/a +\| n\/a +\|/);
    expect(renderPgPools({ cells: { '16': { S3: { full: figuresOf([window('full', 1000, 1, 1)]) } } } })).toBeUndefined();
  });
});
