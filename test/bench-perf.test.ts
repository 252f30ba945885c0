import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  attribute,
  currentSymbols,
  formatPerfMap,
  parsePerfMap,
  parsePerfScript,
  PERF_FREQUENCY,
  perfMapPath,
  perfRows,
  removePerfFiles,
  renderPerf,
  type JitSymbol,
  type PerfFrame,
  type PerfSample,
  type PerfWindow,
} from '../bench/perf-cpu.js';

/** `perf script -F tid,ip,sym,dso` as perf printed it for a custos server run with --perf-basic-prof (trimmed stacks). */
const recorded = `
 8437 
\tffffffff8225fd19 pvm_irq_enable ([kernel.kallsyms])
\tffffffff81750f98 do_epoll_wait ([kernel.kallsyms])
\tffffffff81000130 entry_SYSCALL_64_after_hwframe ([kernel.kallsyms])
\t          108cae epoll_pwait (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t         14c05fb uv__io_poll (/usr/bin/node)
\t         14ac8a7 uv_run (/usr/bin/node)

 8437 
\t         1018d10 v8::internal::Utf8DecoderBase<v8::internal::Utf8Decoder>::Utf8DecoderBase (/usr/bin/node)
\t    7f41041a0001 JS:*slice node:buffer:635:12 (/tmp/perf-8437.map)
\t    7f41041a0002 JS:*DataRow file:///work/main/node_modules/postgres/src/connection.js:492:19 (/tmp/perf-8437.map)
\t    7f41041a0003 JS:*data file:///work/main/node_modules/postgres/src/connection.js:301:16 (/tmp/perf-8437.map)
\t    7f41041a0004 JS:*readableAddChunkPushByteMode node:internal/streams/readable:463:38 (/tmp/perf-8437.map)

 8437 
\tffffffff8225fd19 pvm_irq_enable ([kernel.kallsyms])
\t          1a2b3c __GI___libc_write (/usr/lib/x86_64-linux-gnu/libc.so.6)
\t    7f41041a0005 JS:^writeGeneric node:internal/stream_base_commons:148:22 (/tmp/perf-8437.map)
\t    7f41041a0006 JS:*nextWrite file:///work/main/node_modules/postgres/src/connection.js:254:21 (/tmp/perf-8437.map)

 8437 
\t          bc7fe3 v8::internal::ScavengerCollector::CollectGarbage (/usr/bin/node)
\t          bc7fe4 v8::internal::Heap::CollectGarbage (/usr/bin/node)
\t    7f41041a0007 JS:*canonicalBody file:///work/main/dist/audit/record.js:21:30 (/tmp/perf-8437.map)

 8437 
\t    7f41041a0008 JS:* file:///work/main/dist/authz/reader.js:116:51 (/tmp/perf-8437.map)
\t2038332030306538 [unknown] ([unknown])

 8437 
\t    7f41041a0009 JS:^parserOnIncoming node:_http_server:1026:26 (/tmp/perf-8437.map)
\t         14cfd1c Builtins_InterpreterEntryTrampoline (/usr/bin/node)

 8437 
\t          b4ccad v8::internal::baseline::BaselineCompiler::GenerateCode (/usr/bin/node)
\t         1124130 v8::internal::Runtime_BytecodeBudgetInterrupt_Ignition (/usr/bin/node)
\t    7f41041a000a JS:~executeField /work/main/node_modules/graphql/execution/execute.js:702:22 (/tmp/perf-8437.map)

 8440 
\t          bc7fe3 v8::internal::ScavengerCollector::JobTask::Run (/usr/bin/node)

 8441 
\t          c4993d start_thread (/usr/lib/x86_64-linux-gnu/libc.so.6)
`;

async function parse(text: string): Promise<PerfSample[]> {
  const out: PerfSample[] = [];
  for await (const s of parsePerfScript(text.split('\n'))) out.push(s);
  return out;
}

describe('perf script parsing', () => {
  it('reads threads and frames, innermost first, with their objects', async () => {
    const samples = await parse(recorded);
    expect(samples.map((s) => s.tid)).toEqual([8437, 8437, 8437, 8437, 8437, 8437, 8437, 8440, 8441]);
    expect(samples[0]!.frames[0]).toEqual({ sym: 'pvm_irq_enable', dso: '[kernel.kallsyms]' });
    expect(samples[1]!.frames[1]).toEqual({ sym: 'JS:*slice node:buffer:635:12', dso: '/tmp/perf-8437.map' });
    expect(samples[4]!.frames[1]).toEqual({ sym: '[unknown]', dso: '[unknown]' });
  });
});

describe('attribution', () => {
  it('charges each main-thread sample to the code that asked for the work', async () => {
    const a = attribute(await parse(recorded), 8437);
    expect(a).toMatchObject({ samples: 9, mainSamples: 7, other: { '(garbage collector)': 1, '(other native)': 1 } });
    expect(a.main).toEqual({
      // epoll with no JavaScript on the stack, two of its frames in the kernel (the sample's own frame decides)
      '(event loop, native)': { samples: 1, kernel: 1 },
      // the row decoding inside node:buffer and the socket write inside node's streams belong to the driver
      postgres: { samples: 2, kernel: 1 },
      '(garbage collector)': { samples: 1, kernel: 0 },
      'src/authz/': { samples: 1, kernel: 0 },
      'node:internal': { samples: 1, kernel: 0 },
      '(V8 compiler)': { samples: 1, kernel: 0 },
    });
  });

  const nodeFrame = fc.constantFrom<PerfFrame>(
    { sym: 'JS:*slice node:buffer:635:12', dso: '/tmp/perf-1.map' },
    { sym: 'JS:^writeGeneric node:internal/stream_base_commons:148:22', dso: '/tmp/perf-1.map' },
    { sym: 'Builtins_LoadIC', dso: '/usr/bin/node' },
    { sym: '__GI___libc_write', dso: '/usr/lib/x86_64-linux-gnu/libc.so.6' },
    { sym: 'pvm_irq_enable', dso: '[kernel.kallsyms]' },
  );
  const packages = ['postgres', 'graphql', '@apollo/server', 'drizzle-orm', '@opentelemetry/sdk-trace'] as const;
  const packageFrame = fc.constantFrom(...packages).map((p): PerfFrame => ({ sym: `JS:*fn file:///app/node_modules/${p}/index.js:1:1`, dso: '/tmp/perf-1.map' }));
  const anyFrame = fc.oneof(nodeFrame, packageFrame, fc.constantFrom<PerfFrame>({ sym: 'v8::internal::Heap::CollectGarbage', dso: '/usr/bin/node' }));
  const stack = fc.array(anyFrame, { maxLength: 12 });
  const samplesArb = fc.array(fc.record({ tid: fc.constantFrom(1, 2, 3), frames: stack }), { maxLength: 60 });

  it('counts every sample once, on its thread', () => {
    fc.assert(
      fc.property(samplesArb, (samples) => {
        const a = attribute(samples, 1);
        const main = samples.filter((s) => s.tid === 1).length;
        expect(a.samples).toBe(samples.length);
        expect(a.mainSamples).toBe(main);
        expect(Object.values(a.main).reduce((n, e) => n + e.samples, 0)).toBe(main);
        expect(Object.values(a.other).reduce((n, e) => n + e, 0)).toBe(samples.length - main);
        for (const e of Object.values(a.main)) expect(e.kernel).toBeLessThanOrEqual(e.samples);
      }),
    );
  });

  it('charges a package for the work it called, whatever ran under it in Node and the kernel, and whoever called it', () => {
    fc.assert(
      fc.property(fc.array(nodeFrame, { maxLength: 6 }), packageFrame, stack, (under, owner, above) => {
        const charged = Object.keys(attribute([{ tid: 7, frames: [...under, owner, ...above] }], 7).main);
        expect(charged).toEqual([/node_modules\/(.*)\/index\.js/.exec(owner.sym)![1]]);
      }),
    );
  });
});

describe('the per-request table', () => {
  const window = (variant: string, requests: number, main: PerfWindow['attribution']['main']): PerfWindow => {
    const mainSamples = Object.values(main).reduce((n, e) => n + e.samples, 0);
    return { scenario: 'S3', variant, requests, procCpuMs: (mainSamples * 1000) / PERF_FREQUENCY, attribution: { samples: mainSamples, mainSamples, main, other: {} } };
  };
  // Whole seconds of CPU at 999 samples a second, so that the microseconds per request come out round.
  const windows = [
    window('full', 10_000, { postgres: { samples: 3 * 999, kernel: 999 }, 'src/audit/': { samples: 999, kernel: 0 } }),
    window('off', 20_000, { postgres: { samples: 4 * 999, kernel: 999 } }),
    window('floor', 10_000, { postgres: { samples: 2 * 999, kernel: 999 } }),
  ];

  it('turns samples into microseconds of CPU per request and puts what full adds most first', () => {
    const { rows, totals } = perfRows(windows, ['full', 'off', 'floor']);
    // postgres: 3 s of CPU over 10,000 requests in full, 4 s over 20,000 in off
    expect(rows.map((r) => r.component)).toEqual(['postgres', 'src/audit/']);
    expect(rows[0]!.us).toEqual({ full: 300, off: 200, floor: 200 });
    expect(rows[0]!.kernelUs).toEqual({ full: 100, off: 50, floor: 100 });
    expect(rows[1]!.us).toEqual({ full: 100, off: 0, floor: 0 });
    expect(totals.full).toEqual({ main: 400, all: 400, proc: 400, kernel: 100 });
  });

  it('prints one table per scenario with the totals and full − off', () => {
    const md = renderPerf(windows, ['full', 'off', 'floor']);
    expect(md).toContain('**S3** (requests in the recorded windows: full 10000, off 20000, floor 10000)');
    expect(md).toMatch(/\| postgres +\| 300\.0 \(100\.0\) +\| 200\.0 \(50\.0\) +\| 200\.0 \(100\.0\) +\| 100\.0 +\|/);
    expect(md).toMatch(/\| src\/audit\/ +\| 100\.0 \(0\.0\) +\| 0\.0 \(0\.0\) +\| 0\.0 \(0\.0\) +\| 100\.0 +\|/);
    expect(md).toMatch(/\| \*\*main thread\*\* +\| 400\.0 \(100\.0\) +\| 200\.0 \(50\.0\) +\| 200\.0 \(100\.0\) +\| 200\.0 +\|/);
  });
});

describe('the JIT symbol map as it stood', () => {
  /** The name perf would give `address` from non-overlapping symbols. */
  const nameAt = (symbols: readonly JitSymbol[], address: number) => symbols.find((s) => s.start <= address && address < s.start + s.size)?.name;

  it('names an address by the code V8 put there last, as in the run where the socket reader took over an audit function\'s place', () => {
    // Lines of /tmp/perf-6913.map (session 20), in the order V8 wrote them.
    const map = [
      '7fd942a4f400 1654 JS:^flushBatch file:///work/main/dist/audit/store.js:148:21',
      '7fd942bca180 36e8 JS:*flushBatch file:///work/main/dist/audit/store.js:148:21',
      '7fd942bca180 bc8 JS:*onStreamRead node:internal/stream_base_commons:168:22',
      'not a map line',
      '7fd942bcadc0 114 JS:*isSQLWrapper file:///work/main/node_modules/drizzle-orm/sql/sql.js:11:22',
      '',
    ].join('\n');
    const symbols = currentSymbols(parsePerfMap(map));
    // The return address perf found in onStreamRead's frame, which it had named flushBatch.
    expect(nameAt(symbols, 0x7fd942bca7e0)).toBe('JS:*onStreamRead node:internal/stream_base_commons:168:22');
    // What onStreamRead and isSQLWrapper do not cover is still the older flushBatch's.
    expect(nameAt(symbols, 0x7fd942bcad50)).toBe('JS:*flushBatch file:///work/main/dist/audit/store.js:148:21');
    expect(nameAt(symbols, 0x7fd942bcadc0)).toBe('JS:*isSQLWrapper file:///work/main/node_modules/drizzle-orm/sql/sql.js:11:22');
    expect(nameAt(symbols, 0x7fd942bcd000)).toBe('JS:*flushBatch file:///work/main/dist/audit/store.js:148:21');
    expect(nameAt(symbols, 0x7fd942bcd868)).toBeUndefined();
    expect(formatPerfMap(symbols).split('\n')[0]).toBe('7fd942a4f400 1654 JS:^flushBatch file:///work/main/dist/audit/store.js:148:21');
  });

  it('leaves out a line V8 had not finished writing when the map was read', () => {
    const map = '7fd942a4f400 1654 JS:^flushBatch file:///work/main/dist/audit/store.js:148:21\n7fd942bca180 bc8 JS:*onStre';
    expect(parsePerfMap(map)).toEqual([{ start: 0x7fd942a4f400, size: 0x1654, name: 'JS:^flushBatch file:///work/main/dist/audit/store.js:148:21' }]);
    expect(parsePerfMap(`${map}amRead node:internal/stream_base_commons:168:22\n`)).toHaveLength(2);
  });

  it('gives every address the last line covering it, in ordered ranges that never overlap', () => {
    const line = fc.record({ start: fc.integer({ min: 0, max: 200 }), size: fc.integer({ min: 1, max: 60 }) });
    fc.assert(
      fc.property(fc.array(line, { maxLength: 40 }), (lines) => {
        const symbols = lines.map((l, i) => ({ ...l, name: `JS:*f${i} file:///x.js:${i}:1` }));
        const current = currentSymbols(parsePerfMap(formatPerfMap(symbols)));
        for (const [i, s] of current.entries()) {
          expect(s.size).toBeGreaterThan(0);
          if (i > 0) expect(s.start).toBeGreaterThanOrEqual(current[i - 1]!.start + current[i - 1]!.size);
        }
        for (let address = 0; address < 262; address++) {
          const last = symbols.findLast((s) => s.start <= address && address < s.start + s.size);
          expect(nameAt(current, address)).toBe(last?.name);
        }
      }),
      { numRuns: 300 },
    );
  });
});

describe(removePerfFiles.name, () => {
  it("removes a server's symbol map and V8's logs of that process, nothing else", () => {
    const cwd = mkdtempSync(join(tmpdir(), 'custos-perf-files-'));
    // Pids no process here has (above Linux's default pid_max), so no real map is touched.
    const [pid, other] = [4_500_001, 4_500_002];
    try {
      const kept = ['isolate-0x6c08cc0-4500002-v8.log', 'isolate-0x6c08cc0-45000010-v8.log', 'server.log', 'isolate-0x6c08cc0-4500001-v8.log.bak'];
      for (const name of ['isolate-0x6c08cc0-4500001-v8.log', 'isolate-0x35dda5b0-4500001-v8.log', ...kept]) writeFileSync(join(cwd, name), 'x');
      writeFileSync(perfMapPath(pid), '');
      writeFileSync(perfMapPath(other), '');
      removePerfFiles({ pid, cwd });
      expect(readdirSync(cwd).sort()).toEqual([...kept].sort());
      expect(existsSync(perfMapPath(pid))).toBe(false);
      expect(existsSync(perfMapPath(other))).toBe(true);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
      rmSync(perfMapPath(pid), { force: true });
      rmSync(perfMapPath(other), { force: true });
    }
  });
});
