import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { secretsEnv } from '../bench/secrets.js';
import { exportsWith, parseSwitchOff, switchedOffEnv } from '../bench/split.js';
import { loadConfig } from '../src/config.js';

/** `npm run bench -- --switch-off …`: full against full with only some switches off. */

describe('--switch-off', () => {
  it('takes none, or switch names separated by commas, in a fixed order and once each', () => {
    expect(parseSwitchOff('none')).toEqual([]);
    expect(parseSwitchOff('audit')).toEqual(['audit']);
    expect(parseSwitchOff('tracing, audit,audit')).toEqual(['audit', 'tracing']);
    expect(parseSwitchOff('policy,tracing,audit')).toEqual(['audit', 'tracing', 'policy']);
    expect(parseSwitchOff('policy,export')).toEqual(['export', 'policy']);
    expect(() => parseSwitchOff('audit,masking')).toThrow(/not masking/);
    expect(() => parseSwitchOff('none,audit')).toThrow(/not none/);
    expect(() => parseSwitchOff(',')).toThrow(/--switch-off takes none/);
  });

  // Full as the bench starts it: production, the dataset's keys, spans to the bench's collector.
  const full: Record<string, string> = {
    NODE_ENV: 'production',
    DATABASE_URL: 'postgres://postgres@127.0.0.1:5432/custos_bench_quick',
    JWT_SECRET: randomBytes(24).toString('hex'),
    CURSOR_SECRET: randomBytes(48).toString('base64'),
    PSEUDONYM_KEY: randomBytes(32).toString('base64'),
    OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
    ...secretsEnv({ keyring: `bench-test:${randomBytes(32).toString('base64')}`, kekId: 'bench-test', blindIndexKey: randomBytes(32).toString('base64') }),
  };

  it("gives the off slot full's configuration with exactly the chosen switches off, which custos accepts", () => {
    const collector = 'http://127.0.0.1:4319';
    const cases = [
      { off: [], audit: 'strict', tracing: true, endpoint: collector, policyDir: './policies' },
      { off: ['audit'], audit: 'off', tracing: true, endpoint: collector, policyDir: './policies' },
      { off: ['tracing'], audit: 'strict', tracing: false, endpoint: undefined, policyDir: './policies' },
      // Spans made as full makes them, sent nowhere.
      { off: ['export'], audit: 'strict', tracing: true, endpoint: undefined, policyDir: './policies' },
      { off: ['audit', 'export'], audit: 'off', tracing: true, endpoint: undefined, policyDir: './policies' },
      { off: ['policy'], audit: 'strict', tracing: true, endpoint: collector, policyDir: 'bench/policies-off' },
      { off: ['audit', 'tracing', 'policy'], audit: 'off', tracing: false, endpoint: undefined, policyDir: 'bench/policies-off' },
    ] as const;
    for (const c of cases) {
      const env = switchedOffEnv(full, c.off, collector);
      // Loaded as custos loads its environment: production would refuse the audit and tracing switches.
      const config = loadConfig(env);
      expect(config.production).toBe(false);
      expect(config.auditMode).toBe(c.audit);
      expect(config.tracing).toMatchObject({ enabled: c.tracing, otlpEndpoint: c.endpoint });
      expect(config.policyDir).toBe(c.policyDir);
      // Everything else is full's: its database, its keys, its secrets.
      for (const key of ['DATABASE_URL', 'JWT_SECRET', 'CURSOR_SECRET', 'PSEUDONYM_KEY', 'KEYRING', 'KEK_ACTIVE_ID', 'BLIND_INDEX_KEY'] as const) expect(env[key]).toBe(full[key]);
    }
    // A server that traces is never pointed at full's collector: without one of its own it does not start.
    expect(() => switchedOffEnv(full, ['audit'], undefined)).toThrow(/collector of its own/);
    expect(switchedOffEnv(full, ['tracing'], undefined).OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    // Without export the server needs no collector, and is given none even when one is offered.
    expect(exportsWith(['export'])).toBe(false);
    expect(exportsWith(['audit', 'policy'])).toBe(true);
    expect(switchedOffEnv(full, ['export'], collector).OTEL_EXPORTER_OTLP_ENDPOINT).toBeUndefined();
    // Full's own environment is left as it was.
    expect(full.NODE_ENV).toBe('production');
    expect(full.OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://127.0.0.1:4318');
  });
});
