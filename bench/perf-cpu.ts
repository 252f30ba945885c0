/**
 * CPU time by component from Linux perf (`--perf S`), the servers side by side.
 *
 * V8's profiler (`--profile`) samples at fixed wall-clock intervals: a sample
 * taken while the main thread sits in a syscall that the kernel preempted
 * (a write that wakes a PostgreSQL backend, which then runs first) is charged
 * to that syscall as if it were busy. In a quick S3 run it put 17.6 % of
 * full's samples in `writeBuffer`; perf's CPU clock, on the same server in the
 * same kind of run, 6.3 %. Here every sample is CPU time actually spent, kernel
 * included, and the servers are recorded during their own windows of the same
 * run, so the table says how many microseconds of CPU each component takes per
 * request in full, off and the floor, and what full adds.
 *
 * The servers run with `--perf-basic-prof` (V8 writes /tmp/perf-<pid>.map, so
 * perf can name JIT-compiled functions); `perf record -e cpu-clock -g -p <pid>`
 * runs during the measured window only; `perf script` is read afterwards.
 *
 * V8 only appends to that map: when a function's code is thrown away (a
 * deoptimization, a tier-up, code-space compaction), the next code placed at
 * that address gets a line of its own and the old line stays. perf names an
 * address by any line that covers it: in a quick S1 run, the optimized code of
 * the socket's read callback (`onStreamRead`) sat where an audit function's
 * had been, and perf charged every row postgres.js parsed under it to the
 * audit. So each window is read against the map as it stood when the window
 * ended, each address named by the last line that covered it then
 * (`currentSymbols`).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { componentOf } from './cpuprofile.js';
import { table } from './report.js';

/** Samples per second of CPU time per thread. */
export const PERF_FREQUENCY = 999;

/** One frame of a perf sample: its symbol and the object it came from. */
export interface PerfFrame {
  sym: string;
  dso: string;
}

/** One sample: the thread and its stack, innermost frame first. */
export interface PerfSample {
  tid: number;
  frames: PerfFrame[];
}

/** Why perf cannot record here, or undefined when it can. */
export function perfUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'perf runs on Linux only';
  const version = spawnSync('perf', ['--version'], { encoding: 'utf8' });
  if (version.error || version.status !== 0) return 'no `perf` on PATH (Debian: apt-get install linux-perf)';
  const paranoid = Number(readFileSync('/proc/sys/kernel/perf_event_paranoid', 'utf8').trim());
  if (paranoid > 1 && process.getuid?.() !== 0) {
    return `kernel.perf_event_paranoid is ${paranoid}: perf may not record other processes (run as root, or sysctl kernel.perf_event_paranoid=1)`;
  }
  return undefined;
}

/** A `perf record` of one process, from start() until stop(). */
export class PerfRecording {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  private stopping = false;

  constructor(
    readonly pid: number,
    readonly file: string,
  ) {}

  start(): void {
    const child = spawn('perf', ['record', '-e', 'cpu-clock', '-F', String(PERF_FREQUENCY), '-g', '-p', String(this.pid), '-o', this.file, '--quiet'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-2000)));
    this.exited = new Promise((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code) => (code === 0 || code === null || this.stopping ? resolve(code) : reject(new Error(`perf record exited ${code}: ${stderr.trim()}`))));
    });
    // A perf that fails before stop() is reported there, not as an unhandled rejection meanwhile.
    this.exited.catch(() => undefined);
    this.child = child;
  }

  /** The JIT symbol map's length when the recording stopped: the lines written by then name the window's code. */
  mapBytes: number | undefined;

  /** Ends the recording (SIGINT, as Ctrl-C does: perf writes its file and exits) and waits for the file. */
  async stop(): Promise<void> {
    if (!this.child || !this.exited) return;
    this.stopping = true;
    this.child.kill('SIGINT');
    const timer = setTimeout(() => this.child?.kill('SIGKILL'), 10_000);
    try {
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
    if (!existsSync(this.file)) throw new Error(`perf record left no ${this.file}`);
    this.mapBytes = existsSync(perfMapPath(this.pid)) ? statSync(perfMapPath(this.pid)).size : undefined;
  }
}

/** Where V8 (`--perf-basic-prof`) writes the symbol map of a process's JIT code, and where perf reads it. */
export const perfMapPath = (pid: number) => `/tmp/perf-${pid}.map`;

/** One line of a perf map: code at [start, start + size) named `name`. */
export interface JitSymbol {
  start: number;
  size: number;
  name: string;
}

/**
 * The lines of a perf map (`<start hex> <size hex> <name>`), in the order
 * written; anything else is skipped, and so is a last line without its
 * newline (V8 was writing it when the map was read).
 */
export function parsePerfMap(text: string): JitSymbol[] {
  const out: JitSymbol[] = [];
  for (const line of text.slice(0, text.lastIndexOf('\n') + 1).split('\n')) {
    const m = /^([0-9a-fA-F]+) ([0-9a-fA-F]+) (.+)$/.exec(line);
    if (!m) continue;
    const size = Number.parseInt(m[2]!, 16);
    if (size > 0) out.push({ start: Number.parseInt(m[1]!, 16), size, name: m[3]! });
  }
  return out;
}

/**
 * The map with each address named by the last line that covers it, as
 * non-overlapping ranges in address order (adjacent pieces of one line
 * merged): what perf needs to name code that V8 put where other code had
 * been. A sweep over the lines' boundaries, with the latest line still open
 * on top of a heap.
 */
export function currentSymbols(symbols: readonly JitSymbol[]): JitSymbol[] {
  const order = symbols.map((_, i) => i).sort((a, b) => symbols[a]!.start - symbols[b]!.start);
  const bounds = [...new Set(symbols.flatMap((s) => [s.start, s.start + s.size]))].sort((a, b) => a - b);
  const end = (i: number) => symbols[i]!.start + symbols[i]!.size;
  const open = new MaxHeap();
  const out: Array<JitSymbol & { line: number }> = [];
  let next = 0;
  for (let b = 0; b + 1 < bounds.length; b++) {
    const from = bounds[b]!;
    const to = bounds[b + 1]!;
    while (next < order.length && symbols[order[next]!]!.start <= from) open.push(order[next++]!);
    while (open.size > 0 && end(open.top()) <= from) open.pop();
    if (open.size === 0) continue;
    const line = open.top();
    const last = out.at(-1);
    if (last && last.line === line && last.start + last.size === from) last.size += to - from;
    else out.push({ start: from, size: to - from, name: symbols[line]!.name, line });
  }
  return out.map(({ start, size, name }) => ({ start, size, name }));
}

/** A max-heap of line numbers (the latest line on top). */
class MaxHeap {
  private readonly items: number[] = [];

  get size(): number {
    return this.items.length;
  }

  top(): number {
    return this.items[0]!;
  }

  push(value: number): void {
    const a = this.items;
    a.push(value);
    for (let i = a.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (a[parent]! >= a[i]!) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }

  pop(): void {
    const a = this.items;
    const last = a.pop()!;
    if (a.length === 0) return;
    a[0] = last;
    for (let i = 0; ; ) {
      const l = 2 * i + 1;
      const r = l + 1;
      let top = i;
      if (l < a.length && a[l]! > a[top]!) top = l;
      if (r < a.length && a[r]! > a[top]!) top = r;
      if (top === i) break;
      [a[top], a[i]] = [a[i]!, a[top]!];
      i = top;
    }
  }
}

/** A perf map's text for these symbols. */
export function formatPerfMap(symbols: readonly JitSymbol[]): string {
  return symbols.map((s) => `${s.start.toString(16)} ${s.size.toString(16)} ${s.name}\n`).join('');
}

/**
 * Parses `perf script -F tid,ip,sym,dso`: a line with the thread id opens a
 * sample, each tab-indented line after it is a frame (`<ip> <symbol> (<dso>)`),
 * a blank line closes it.
 */
export async function* parsePerfScript(lines: AsyncIterable<string> | Iterable<string>): AsyncGenerator<PerfSample> {
  let current: PerfSample | undefined;
  for await (const line of lines) {
    if (line.trim() === '') {
      if (current) yield current;
      current = undefined;
      continue;
    }
    if (!line.startsWith('\t')) {
      if (current) yield current;
      const tid = Number(line.trim().split(/\s+/)[0]);
      current = Number.isInteger(tid) ? { tid, frames: [] } : undefined;
      continue;
    }
    if (!current) continue;
    const frame = /^\s*[0-9a-f]+\s+(.*?)\s+\(([^()]*)\)\s*$/.exec(line);
    if (frame) current.frames.push({ sym: frame[1]!, dso: frame[2]! });
  }
  if (current) yield current;
}

/** A JavaScript frame as `--perf-basic-prof` names it: `JS:*name url:line:col` (older Node: `LazyCompile:*name …`). */
const JS_FRAME = /^(?:JS|LazyCompile|Function|Script):[*~^+]?(.*?)\s*((?:file:\/\/|node:|\/)\S*?):\d+:\d+$/;

const GC = /^v8::internal::(?:Scavenger|ScavengerCollector|Heap::|MarkCompact|MinorMarkCompact|MinorMarkSweep|Sweeper|ConcurrentMarking|IncrementalMarking|MarkingVisitor|MarkingBarrier|ScavengeJob|EvacuateVisitor|FullEvacuator|YoungGenerationMarking)/;
const COMPILER = /^v8::internal::(?:Compiler::|compiler::|baseline::|maglev::|Parser|ParserBase|BytecodeGenerator|interpreter::BytecodeGenerator|Compile|OptimizingCompileDispatcher)/;
const isKernel = (f: PerfFrame) => f.dso === '[kernel.kallsyms]' || f.dso.startsWith('[kernel');

/** CPU samples charged to components, per thread kind, with the kernel's part of each. */
export interface Attribution {
  /** All samples of the process. */
  samples: number;
  /** Samples of its main thread (the event loop). */
  mainSamples: number;
  /** Main-thread samples per component, and of them the ones inside the kernel. */
  main: Record<string, { samples: number; kernel: number }>;
  /** Samples of every other thread (V8's GC and compiler helpers, libuv's pool), by kind. */
  other: Record<string, number>;
}

/**
 * Charges each sample to a component. On the main thread: the component (a
 * package, a folder of src/) of the innermost JavaScript frame outside Node's
 * own library, with everything under it charged to it too: Node's streams,
 * sockets and buffers it called, builtins, the kernel. So a socket write is
 * charged to the package that wrote, a row's UTF-8 decoding to the driver that
 * decoded it. Only stacks with nothing but Node's library above them (the HTTP
 * server's parser, timers) are `node:internal`. V8's garbage collection and
 * compilation are charged to `(garbage collector)` and `(V8 compiler)` when
 * they sit between the sample and its innermost JavaScript frame. A
 * main-thread sample with no JavaScript frame is the event loop itself
 * (`(event loop, native)`: epoll, libuv, callbacks before they enter
 * JavaScript). Other threads are counted by kind only.
 */
export function attribute(samples: Iterable<PerfSample>, mainTid: number): Attribution {
  const out: Attribution = { samples: 0, mainSamples: 0, main: {}, other: {} };
  for (const s of samples) {
    out.samples += 1;
    if (s.tid !== mainTid) {
      const kind = s.frames.some((f) => GC.test(f.sym)) ? '(garbage collector)' : s.frames.some((f) => COMPILER.test(f.sym)) ? '(V8 compiler)' : '(other native)';
      out.other[kind] = (out.other[kind] ?? 0) + 1;
      continue;
    }
    out.mainSamples += 1;
    let component: string | undefined;
    let inNode = false;
    for (const f of s.frames) {
      if (!inNode && GC.test(f.sym)) {
        component = '(garbage collector)';
        break;
      }
      if (!inNode && COMPILER.test(f.sym)) {
        component = '(V8 compiler)';
        break;
      }
      const js = JS_FRAME.exec(f.sym);
      if (!js) continue;
      // Node's own library (streams, sockets, buffers) is charged to whoever called into it.
      if (js[2]!.startsWith('node:')) {
        inNode = true;
        continue;
      }
      component = componentOf(js[2]!, js[1] || '(anonymous)');
      break;
    }
    component ??= inNode ? 'node:internal' : '(event loop, native)';
    const entry = (out.main[component] ??= { samples: 0, kernel: 0 });
    entry.samples += 1;
    if (s.frames[0] && isKernel(s.frames[0])) entry.kernel += 1;
  }
  return out;
}

/**
 * Reads a recording's samples through `perf script` and attributes them (see
 * attribute()). With `map` (the process's perf map as V8 wrote it, up to the
 * window's end), perf first gets that map with stale lines resolved
 * (currentSymbols), written where it reads it: only once the process has
 * stopped writing there.
 */
export async function attributeRecording(file: string, pid: number, map?: string): Promise<Attribution> {
  if (map !== undefined) writeFileSync(perfMapPath(pid), formatPerfMap(currentSymbols(parsePerfMap(map))));
  const child = spawn('perf', ['script', '-i', file, '-F', 'tid,ip,sym,dso'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', resolve);
  });
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  const collected: PerfSample[] = [];
  for await (const sample of parsePerfScript(lines)) collected.push(sample);
  const code = await exited;
  if (code !== 0) throw new Error(`perf script -i ${file} exited ${code}`);
  return attribute(collected, pid);
}

/**
 * Removes what V8 wrote for a process run with --perf-basic-prof: its JIT
 * symbol map (it grows for the process's life) and, since the flag also turns
 * V8's log on, the `isolate-<address>-<pid>-v8.log` files in the directory
 * the process ran in (a checkout's root).
 */
export function removePerfFiles(server: { pid: number; cwd: string }): void {
  rmSync(perfMapPath(server.pid), { force: true });
  const ownLog = new RegExp(`^isolate-0x[0-9a-f]+-${server.pid}-v8\\.log$`);
  for (const name of readdirSync(server.cwd)) if (ownLog.test(name)) rmSync(join(server.cwd, name), { force: true });
}

/** One recorded window: whose, of which scenario, how many requests it served, and the attribution. */
export interface PerfWindow {
  scenario: string;
  variant: string;
  requests: number;
  /** The server's CPU over the window from /proc, ms: what the samples should roughly add up to. */
  procCpuMs: number;
  attribution: Attribution;
}

/** Per-request microseconds of CPU, as perf counted it. */
const usPerRequest = (samples: number, requests: number) => (requests > 0 ? ((samples / PERF_FREQUENCY) * 1e6) / requests : NaN);

/** A variant's totals, µs per request: main thread (and of it the kernel), all threads by perf, and by /proc. */
export interface PerfTotals {
  main: number;
  kernel: number;
  all: number;
  proc: number;
}

export interface PerfRow {
  component: string;
  /** µs of main-thread CPU per request, per variant (NaN when it did not run). */
  us: Record<string, number>;
  /** Of that, in the kernel. */
  kernelUs: Record<string, number>;
}

/** One scenario's windows as rows: components by what full spends on them more than off, then the totals. */
export function perfRows(windows: PerfWindow[], variants: readonly string[]): { rows: PerfRow[]; totals: Record<string, PerfTotals> } {
  const byVariant = new Map(windows.map((w) => [w.variant, w]));
  const names = new Set<string>();
  for (const w of windows) for (const name of Object.keys(w.attribution.main)) names.add(name);
  const rows: PerfRow[] = [...names].map((component) => {
    const us: Record<string, number> = {};
    const kernelUs: Record<string, number> = {};
    for (const v of variants) {
      const w = byVariant.get(v);
      const entry = w?.attribution.main[component];
      us[v] = w ? usPerRequest(entry?.samples ?? 0, w.requests) : NaN;
      kernelUs[v] = w ? usPerRequest(entry?.kernel ?? 0, w.requests) : NaN;
    }
    return { component, us, kernelUs };
  });
  // An absent variant's NaN counts as nothing.
  const extra = (r: PerfRow) => (r.us.full || 0) - (r.us.off || 0);
  rows.sort((a, b) => extra(b) - extra(a) || (b.us.full ?? 0) - (a.us.full ?? 0));
  const totals: Record<string, PerfTotals> = {};
  for (const v of variants) {
    const w = byVariant.get(v);
    if (!w) continue;
    const kernel = Object.values(w.attribution.main).reduce((n, e) => n + e.kernel, 0);
    totals[v] = {
      main: usPerRequest(w.attribution.mainSamples, w.requests),
      all: usPerRequest(w.attribution.samples, w.requests),
      proc: w.requests > 0 ? (w.procCpuMs * 1000) / w.requests : NaN,
      kernel: usPerRequest(kernel, w.requests),
    };
  }
  return { rows, totals };
}

const us = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '—' : n.toFixed(1));

/** The markdown section of a --perf run: one table per scenario recorded. */
export function renderPerf(windows: PerfWindow[], variants: readonly string[], minUs = 2): string {
  const out = [
    '### CPU by component (perf, main thread)',
    '',
    `Linux perf's CPU clock (${PERF_FREQUENCY} Hz) on each server during its own first window of the scenario, servers run with --perf-basic-prof. ` +
      'µs of CPU per request on the main thread (the event loop), charged to the innermost JavaScript frame outside Node\'s own library, with the Node, native and kernel ' +
      'frames under it (a socket write to the package that wrote; GC and V8 compilation apart); "kernel" is the part of it inside the kernel (syscalls, page faults, wake-ups). ' +
      `Rows under ${minUs} µs in every variant are left out. perf's own cost slows every server; compare the variants, not these figures with other runs.`,
    '',
  ];
  for (const scenario of [...new Set(windows.map((w) => w.scenario))]) {
    const mine = windows.filter((w) => w.scenario === scenario);
    const present = variants.filter((v) => mine.some((w) => w.variant === v));
    const { rows, totals } = perfRows(mine, present);
    const both = present.includes('full') && present.includes('off');
    const header = ['component', ...present.map((v) => `${v} µs/req (kernel)`), ...(both ? ['full − off'] : [])];
    const body = rows
      .filter((r) => present.some((v) => (r.us[v] ?? 0) >= minUs))
      .map((r) => [
        r.component,
        ...present.map((v) => `${us(r.us[v])} (${us(r.kernelUs[v])})`),
        ...(both ? [us((r.us.full ?? 0) - (r.us.off ?? 0))] : []),
      ]);
    const totalRow = (label: string, pick: (t: PerfTotals) => number, kernel?: (t: PerfTotals) => number) => [
      label,
      ...present.map((v) => (totals[v] ? `${us(pick(totals[v]))}${kernel ? ` (${us(kernel(totals[v]))})` : ''}` : '—')),
      ...(both && totals.full && totals.off ? [us(pick(totals.full) - pick(totals.off))] : []),
    ];
    body.push(totalRow('**main thread**', (t) => t.main, (t) => t.kernel), totalRow('all threads (perf)', (t) => t.all), totalRow('all threads (/proc)', (t) => t.proc));
    const requests = mine.map((w) => `${w.variant} ${w.requests}`).join(', ');
    out.push(`**${scenario}** (requests in the recorded windows: ${requests})`, '', table(header, body), '');
  }
  return out.join('\n');
}
