import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Metrics } from './metrics.js';

const metrics = () => new Metrics({ statements: () => 0, spans: () => ({ exported: 0, failed: 0, dropped: 0, pending: 0 }) });

async function busySeconds(m: Metrics): Promise<number> {
  const text = await m.registry.metrics();
  const value = /^custos_event_loop_busy_seconds_total (\S+)$/m.exec(text)?.[1];
  expect(value).toBeDefined();
  return Number(value);
}

describe('custos_event_loop_busy_seconds_total', () => {
  it('is a counter', async () => {
    expect(await metrics().registry.metrics()).toMatch(/^# TYPE custos_event_loop_busy_seconds_total counter$/m);
  });

  it('grows by the time the loop runs code, not by the time it waits', async () => {
    const m = metrics();
    const first = await busySeconds(m);
    expect(first).toBeGreaterThan(0);
    // 80 ms of running code.
    const start = performance.now();
    while (performance.now() - start < 80) Math.sqrt(Math.random());
    const afterWork = await busySeconds(m);
    expect(afterWork - first).toBeGreaterThanOrEqual(0.079);
    // 300 ms of waiting: far less than that is counted.
    const waitStart = performance.now();
    await sleep(300);
    const waited = (performance.now() - waitStart) / 1000;
    const afterWait = await busySeconds(m);
    expect(afterWait - afterWork).toBeLessThan(waited / 2);
    expect(afterWait).toBeGreaterThanOrEqual(afterWork);
  });
});
