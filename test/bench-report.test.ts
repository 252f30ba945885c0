import { describe, expect, it } from 'vitest';
import { collectorLine, figuresOf, type Measurement } from '../bench/report.js';

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
