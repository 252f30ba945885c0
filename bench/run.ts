/**
 * `npm run bench [-- --quick | --soak SECONDS]`: custos as deployed (full)
 * against the same code with enforcement, audit and tracing off (off) and
 * against the bare SQL (floor), on the project's seed in PostgreSQL.
 * See bench/README.md for what each figure means.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import postgres from 'postgres';
import { signToken } from '../src/auth/authenticate.js';
import { loadConfig } from '../src/config.js';
import { parseBenchArgs } from './args.js';
import { profileSummary } from './cpuprofile.js';
import { attributeRecording, PerfRecording, perfMapPath, perfUnavailable, removePerfFiles, renderPerf, type PerfWindow } from './perf-cpu.js';
import { analyzeAuditTrail, ensureDataset, postgresServer, type Dataset } from './dataset.js';
import { measureExport } from './export-stream.js';
import { podHeapOption } from './heap.js';
import { imageNodeFlags, imageNodeOptions } from './image.js';
import { readGcLog } from './gc-log.js';
import type { LoadJob } from './load-worker.js';
import { startOtlpSink, type OtlpSink } from './otlp-sink.js';
import {
  describeRun, figuresOf, isFigures, renderTables, describeTrail, summaryLine, unusedResultName, writeResults, type Cell, type FixedRate, type Measurement, type Report, type SpanExport,
} from './report.js';
import { auditScenario, bodiesOf, checkReply, idPool, interleave, post, scenarios, type Pools, type Scenario, type ScenarioKey } from './scenarios.js';
import { secretsEnv } from './secrets.js';
import { buildProject, buildServers, type Built } from './build.js';
import { exportsWith, switchedOffEnv, type Switch } from './split.js';
import {
  backendApplications, cpuMs, LoadWorker, machineCpu, machineProbeMs, postgresBackends, postgresCpuByPool, postgresDelta, postgresProcesses, readCounters, repoRoot, rssMb, runQueueWaitMs, startServer, stopAll, variants,
  type BackendReading, type RunQueueWait, type ServerCounters, type ServerHandle, type ServerSpec, type SpanCounts, type Variant,
} from './servers.js';
import { soak } from './soak.js';
import { pgActivityReader } from './pg-activity.js';

interface Profile {
  name: 'quick' | 'full';
  database: string;
  customers: number;
  warmupSec: number;
  durationSec: number;
  connections: number[];
  rounds: number;
  poolSize: number;
  /** Unmeasured load on each server before the first round, so that no variant meets its first window with cold JIT. */
  primeSec: number;
  /** Warm-up and window of the fixed-rate comparison; its rounds are `rounds`. */
  fixedRate: { warmupSec: number; durationSec: number };
}

const profiles: Record<Profile['name'], Profile> = {
  quick: { name: 'quick', database: 'custos_bench_quick', customers: 20_000, warmupSec: 2, durationSec: 5, connections: [16], rounds: 1, poolSize: 500, primeSec: 2, fixedRate: { warmupSec: 1, durationSec: 4 } },
  full: { name: 'full', database: 'custos_bench', customers: 100_000, warmupSec: 5, durationSec: 10, connections: [16, 64], rounds: 2, poolSize: 1000, primeSec: 5, fixedRate: { warmupSec: 3, durationSec: 10 } },
};

const usage = `usage: npm run bench -- [--quick] [--soak SECONDS [--rate N]] [--rounds N] [--scenarios S1,S3] [--profile S1]
  (default)      full dataset (100k customers), 16 and 64 connections, 2 interleaved rounds
  --quick        20k customers, 2 s warm-up + 5 s window, 16 connections, one round (< 3 min)
                 (after the 16-connection windows, S1–S3 on full and off at one fixed rate: 1 s + 4 s quick, 3 s + 10 s full)
  --soak S       full variant only for S seconds at a fixed rate (--rate, default 100 req/s)
  --soak-variant off|floor   soak the off server or the floor instead (what drifts without enforcement, audit and tracing)
  --soak-profile  CPU profiles of the soaked server in windows 4–6 and the last three, compared per request (soak of 90 s at least)
  --profile S    CPU-profile the full server during its first window of scenario S and name the hottest functions
  --profile-variant off   profile the off server instead (to tell what full adds)
  --perf S1,S3   Linux perf (CPU clock) on each server during its first window of each scenario named:
                 CPU µs per request by component, full, off and floor side by side (needs perf; results ...-perf)
  --compare DIR  A/B of two checkouts: the off slot runs custos as deployed (full's configuration) from the
                 checkout in DIR (with its node_modules, e.g. a git worktree of main), so full/off reads
                 "this checkout against that one", measured side by side; results are named ...-compare
  --full-db-param NAME=VALUE   a PostgreSQL setting for full's connections only (repeatable), e.g.
                 plan_cache_mode=force_generic_plan with --compare . to measure a setting against none
  --full-node-flag NAME[=VALUE]   a Node or V8 flag on full's command line only, without its dashes
                 (repeatable), e.g. max-semi-space-size=64 with --compare . (V8 flags NODE_OPTIONS refuses too)
  --connections 16,64   the throughput windows' connection counts (1..256); the fixed-rate comparison
                 runs only when 16 is among them
  --switch-off audit,tracing,export,policy   the price of some of full's switches: the off slot runs
                 full's configuration with only those off (in development mode, as off does; \`none\` measures
                 that mode alone; \`export\` keeps tracing but gives the spans to no collector), so full/off
                 reads "full against full without them"; results are named ...-switch-off-…`;

function parse() {
  const args = parseBenchArgs(process.argv.slice(2));
  if (args.help) {
    console.log(usage);
    process.exit(0);
  }
  const profile = { ...profiles[args.quick ? 'quick' : 'full'] };
  if (args.rounds !== undefined) profile.rounds = args.rounds;
  if (args.connections) profile.connections = args.connections;
  if (args.perf) {
    const why = perfUnavailable();
    if (why) throw new Error(`--perf: ${why}`);
  }
  const compare = args.compare === undefined ? undefined : resolve(args.compare);
  if (compare !== undefined) {
    if (!existsSync(join(compare, 'src', 'main.ts')) || !existsSync(join(compare, 'node_modules'))) {
      throw new Error(`--compare ${compare}: not a custos checkout with its node_modules (src/main.ts, node_modules)`);
    }
    // Refused now, before the dataset and the build, for want of the build config it is compiled with.
    buildProject(compare);
  }
  return { ...args, profile, compare };
}

/** DATABASE_URL with PostgreSQL settings as query parameters (postgres.js sends unknown ones as startup settings). */
function withSettings(url: string, settings: ReadonlyArray<readonly [string, string]>): string {
  if (settings.length === 0) return url;
  const params = new URLSearchParams(settings.map(([k, v]): [string, string] => [k, v]));
  return `${url}${url.includes('?') ? '&' : '?'}${params.toString()}`;
}

/** Whom the run needs tokens for: the scenarios' principals, then the export measurement's. */
const TOKEN_PRINCIPALS = ['u-mgr-1', 'u-auditor-1', 'u-analyst-1', 'u-dpo-1'] as const;
type TokenPrincipal = (typeof TOKEN_PRINCIPALS)[number];

/**
 * Tokens signed with the run's secret, as `npm run -s token` signs them (its
 * signToken, over the configuration loadConfig reads from the same
 * environment), in this process: the command is a process of ~1.4 s per
 * token, and four of them held a quick run ~5 s. Minting opens no database:
 * the user's DATABASE_URL (which the bench may have set aside as no server)
 * stays out.
 */
async function mintTokens(secret: string): Promise<Record<TokenPrincipal, string>> {
  const { auth } = loadConfig({ ...process.env, DATABASE_URL: undefined, JWT_SECRET: secret });
  const minted = await Promise.all(TOKEN_PRINCIPALS.map(async (principal) => [principal, await signToken(auth, principal)] as const));
  return Object.fromEntries(minted) as Record<TokenPrincipal, string>;
}

const gitIn = (dir: string, ...args: string[]) => {
  try {
    return execFileSync('git', args, { cwd: dir, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
};
/** The commit of a checkout, marked when its src/ differs from it. */
const commitOf = (dir: string) => `${gitIn(dir, 'rev-parse', '--short', 'HEAD')}${gitIn(dir, 'status', '--porcelain', '--', 'src') ? ' (src/ has uncommitted changes)' : ''}`;

/**
 * The collector of the full variant. Module-wide so that every way out (end,
 * error, Ctrl-C) closes it, after the servers: their shutdown flushes the last
 * spans to it.
 */
let sink: OtlpSink | undefined;

/** The collector of the off slot's server when it traces (--compare, --switch-off), so that each server's spans are counted apart. */
let compareSink: OtlpSink | undefined;

/** Servers run with --perf-basic-prof, whose JIT symbol maps and V8 logs are removed once the servers stop. */
let perfServers: Array<{ pid: number; cwd: string }> = [];

async function stopEverything(): Promise<void> {
  await stopAll();
  await sink?.close();
  await compareSink?.close();
}

/**
 * Reads each --perf recording against its server's symbol map as it stood at
 * the window's end (the servers stopped: their maps are complete and nothing
 * writes them any more), then removes the maps.
 */
async function perfWindows(run: Run): Promise<PerfWindow[]> {
  try {
    const maps = new Map<number, Buffer | null>();
    const windows: PerfWindow[] = [];
    for (const { file, pid, mapBytes, ...window } of run.perf?.recorded ?? []) {
      if (!maps.has(pid)) maps.set(pid, existsSync(perfMapPath(pid)) ? readFileSync(perfMapPath(pid)) : null);
      const map = maps.get(pid);
      const asOfWindow = map && mapBytes !== undefined ? map.subarray(0, mapBytes).toString('utf8') : undefined;
      windows.push({ ...window, attribution: await attributeRecording(file, pid, asOfWindow) });
    }
    return windows;
  } finally {
    for (const server of perfServers) removePerfFiles(server);
  }
}

interface Run {
  args: ReturnType<typeof parse>;
  p: Profile;
  dataset: Dataset;
  /** The image's NODE_OPTIONS, given to the three servers. */
  nodeOptions: string;
  /** The flags of the image's CMD, on the three servers' command lines. */
  nodeFlags: string[];
  servers: Record<Variant, ServerHandle>;
  worker: LoadWorker;
  tokens: Record<TokenPrincipal, string>;
  pools: Pools;
  /** Profile the full server during the first window of this scenario. */
  cpuProfile?: { scenario: ScenarioKey; variant: 'full' | 'off'; dir: string; done: boolean };
  /** --perf: the scenarios whose first window of each variant perf records, and the recordings made (read after the run). */
  perf?: { scenarios: ScenarioKey[]; dir: string; recorded: Array<Omit<PerfWindow, 'attribution'> & { file: string; pid: number; mapBytes: number | undefined }> };
  /** The soak's GC log: the file the full server's bench/gc-watch.ts appends to. */
  gcLog?: string;
  /** --soak-profile: where the soaked server writes its profiles. */
  soakProfileDir?: string;
}

const headersFor = (run: Run, s: Scenario) => ({ authorization: `Bearer ${run.tokens[s.principal]}`, 'content-type': 'application/json' });

interface Window {
  s: Scenario;
  bodies: string[];
  variant: Variant;
  connections: number;
  round: number;
  /** A fixed-rate window: its rate (req/s) and timing; absent: as fast as the server answers, the profile's timing. */
  fixed?: { rate: number; warmupSec: number; durationSec: number };
}

/** The fixed-rate comparison: its connections, the throughput figures its rates come from, and the scenarios it covers. */
const FIXED_RATE_CONNECTIONS = 16;
const FIXED_RATE_SCENARIOS: readonly ScenarioKey[] = ['S1', 'S2', 'S3'];
/** Share of the slower variant's throughput: both variants then run well below saturation. */
const FIXED_RATE_SHARE = 0.5;

/**
 * The server's counters once the requests still in flight have been answered,
 * read in the pause after the warm-up and after the window: statements and
 * spans are then counted together with their requests, never without them.
 * Settled means none in flight (`custos_graphql_requests_in_flight`, where the
 * server has it) and the request count steady for 150 ms: a steady count
 * alone was fooled once, when 60 requests of S2 at 64 connections all waited
 * on one slow group commit. 10 s at most.
 */
async function settledCounters(url: string): Promise<ServerCounters> {
  let counters = await readCounters(url);
  const deadline = Date.now() + 10_000;
  while (counters.requests !== null && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 150));
    const next = await readCounters(url);
    // An idle loop reads a request waiting in its socket at once, so with none in flight a steady count is final.
    const settled = next.requests === counters.requests && (next.inFlight ?? 0) === 0;
    counters = next;
    if (settled) break;
  }
  return counters;
}

/** One measured window: warm-up, snapshots around the window, the load result. */
async function measure(run: Run, w: Window): Promise<Measurement> {
  const server = run.servers[w.variant];
  const { database } = run.p;
  const { warmupSec, durationSec } = w.fixed ?? run.p;
  const job: LoadJob = {
    url: `${server.url}/graphql`, connections: w.connections, warmupSec, durationSec, headers: headersFor(run, w.s), bodies: w.bodies, ...(w.fixed ? { overallRate: w.fixed.rate } : {}),
  };
  const snap = async (order: 'before' | 'after') => {
    // The /metrics request is kept outside the CPU window.
    const before = order === 'before' ? await settledCounters(server.url) : null;
    const loopBefore = before && { sec: before.loopBusySec, atMs: performance.now() };
    const at = {
      cpu: cpuMs(server.pid), pg: postgresBackends(database), loadgen: cpuMs(run.worker.pid), bench: cpuMs(process.pid), waited: runQueueWaitMs(server.pid),
    };
    // The loop's busy time is read at the window's edge: the settling after it would dilute the share. That first scrape
    // after the window also carries the loop's delay over the window (the histogram was reset by the last scrape before it).
    const edge = before ? null : await readCounters(server.url);
    const loop = loopBefore ?? { sec: edge!.loopBusySec, atMs: performance.now() };
    return { ...at, loop, loopDelay: edge?.loopDelay ?? null, counters: before ?? (await settledCounters(server.url)) };
  };
  // What autovacuum would do, during the warm-up (which it may slow: it is not measured) and finished before the window.
  const analyzed = analyzeAuditTrail(run.dataset.url);
  analyzed.catch(() => undefined);
  const prof = run.cpuProfile;
  // Only a window as fast as the server answers is profiled (the first of the scenario, always before its fixed-rate ones).
  const profiling = prof && !prof.done && !w.fixed && prof.scenario === w.s.key && w.variant === prof.variant;
  // perf records each variant's first window of a --perf scenario (never a fixed-rate one), from the first snapshot to the window's end.
  const perf = run.perf;
  const recording = perf && !w.fixed && perf.scenarios.includes(w.s.key) && !perf.recorded.some((r) => r.scenario === w.s.key && r.variant === w.variant)
    ? new PerfRecording(server.pid, join(perf.dir, `${w.variant}-${w.s.key}-${server.pid}.data`))
    : undefined;
  let before: Awaited<ReturnType<typeof snap>> | undefined;
  let from = 0;
  const load = await run.worker.run(job, async () => {
    await analyzed;
    before = await snap('before');
    if (profiling) process.kill(server.pid, 'SIGUSR2');
    recording?.start();
    from = Date.now();
  });
  const to = Date.now();
  await recording?.stop();
  const after = await snap('after');
  // Which pool each backend is (its application name), read after the window's snapshot: outside the CPU it measures.
  const names = await backendApplications(run.dataset.url, database).catch(() => null);
  if (profiling) {
    process.kill(server.pid, 'SIGUSR2');
    prof.done = true;
  }
  const b = before!;
  if (recording) perf!.recorded.push({ scenario: w.s.key, variant: w.variant, requests: load.requests, procCpuMs: after.cpu - b.cpu, file: recording.file, pid: server.pid, mapBytes: recording.mapBytes });
  return {
    scenario: w.s.key, variant: w.variant, connections: w.connections, round: w.round, ...(w.fixed ? { rate: w.fixed.rate } : {}), load,
    statements: b.counters.statements !== null && after.counters.statements !== null ? after.counters.statements - b.counters.statements : null,
    served: b.counters.requests !== null && after.counters.requests !== null ? after.counters.requests - b.counters.requests : null,
    spans: server.exportsSpans ? spansBetween(b.counters, after.counters) : null,
    audit: b.counters.audit && after.counters.audit
      ? { records: after.counters.audit.records - b.counters.audit.records, commits: after.counters.audit.commits - b.counters.audit.commits }
      : null,
    serverCpuMs: after.cpu - b.cpu, postgresCpuMs: postgresDelta(b.pg, after.pg, 'cpuMs'),
    postgresCpuByPool: names ? postgresCpuByPool(b.pg, after.pg, names) : null,
    loadgenCpuMs: after.loadgen - b.loadgen, benchCpuMs: after.bench - b.bench,
    rssMb: rssMb(server.pid), windowMs: { from, to },
    loopBusy: b.loop.sec !== null && after.loop.sec !== null ? ((after.loop.sec - b.loop.sec) * 1000) / (after.loop.atMs - b.loop.atMs) : null,
    loopDelayMs: after.loopDelay,
    runQueueWaitMs: runQueueWaits(b, after),
  };
}

/** The run-queue waits between two snapshots, or null where the kernel keeps no such statistics. */
function runQueueWaits(before: { waited: number; pg: Map<number, BackendReading> }, after: { waited: number; pg: Map<number, BackendReading> }): RunQueueWait | null {
  const server = after.waited - before.waited;
  const backends = postgresDelta(before.pg, after.pg, 'runQueueWaitMs');
  return Number.isFinite(server) && Number.isFinite(backends) ? { server, postgres: backends } : null;
}

const ended = (c: SpanCounts) => c.exported + c.failed + c.dropped + c.pending;

/** Spans ended and dropped between two readings; null when the server exposes no span counters. */
function spansBetween(before: ServerCounters, after: ServerCounters): Measurement['spans'] {
  if (!before.spans || !after.spans) return null;
  return { ended: ended(after.spans) - ended(before.spans), dropped: after.spans.dropped - before.spans.dropped };
}

/** Full's span counters once it has nothing pending (its batch processor exports within EXPORT_DELAY_MS, 100 ms), or after `timeoutMs`. */
async function settledSpans(run: Run, timeoutMs = 5000): Promise<SpanCounts | null> {
  const deadline = Date.now() + timeoutMs;
  let spans = (await readCounters(run.servers.full.url)).spans;
  while (spans && spans.pending > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    spans = (await readCounters(run.servers.full.url)).spans;
  }
  return spans;
}

/**
 * Waits until full has nothing pending, then reads its counters against the
 * sink's. Undefined when full's /metrics has no span counters.
 */
async function spanExportCheck(run: Run): Promise<SpanExport | undefined> {
  const spans = await settledSpans(run);
  // Nothing pending means no batch in flight, so the two must agree. custos counts a batch once answered and the sink
  // before answering, so reading custos first lets a late batch only raise the sink's count, never hide a loss.
  return spans && sink ? { custos: spans, sink: sink.counts() } : undefined;
}

/** Sends a few requests of each scenario to each variant; a variant that answers wrongly is reported, not loaded. */
async function sampleCheck(run: Run, active: Scenario[]): Promise<Map<string, string>> {
  const problems = new Map<string, string>();
  // The compared checkout runs as full does and must answer as full does; so does full with some
  // switches off, unless the policy is among them (then S4 reveals nothing, as under off).
  const asFull = run.args.compare !== undefined || (run.args.switchOff !== undefined && !run.args.switchOff.includes('policy'));
  for (const s of active) {
    for (const variant of variants) {
      for (const body of bodiesOf(s, run.pools).slice(0, 3)) {
        const reply = await post(run.servers[variant].url, run.tokens[s.principal], body);
        if (s.key === 'S4' && variant === 'full' && reply.json?.extensions?.traceId) run.pools.traceId = reply.json.extensions.traceId;
        const problem = checkReply(s.key, asFull && variant === 'off' ? 'full' : variant, reply);
        if (problem) {
          problems.set(`${s.key}/${variant}`, problem);
          break;
        }
      }
      if (s.key === 'S5' && !run.pools.traceId) problems.set(`S5/${variant}`, 'no extensions.traceId in S4 replies');
    }
  }
  return problems;
}

/** How the image runs custos (bench/image.ts): given to the three servers alike, the same heap settings for all. */
function deployedImage(): { nodeOptions: string; nodeFlags: string[] } {
  const dockerfile = readFileSync(join(repoRoot, 'Dockerfile'), 'utf8');
  return { nodeOptions: imageNodeOptions(dockerfile), nodeFlags: imageNodeFlags(dockerfile) };
}

/** What runs in the off slot: the off variant, another checkout as deployed (--compare), or full with some switches off (--switch-off). */
type OffSlot = { kind: 'off' } | { kind: 'compare'; dir: string; collector: string } | { kind: 'switch-off'; off: Switch[]; collector: string | undefined };

async function startAll(
  built: Built, dataset: Dataset, secret: string, collector: string, nodeOptions: string, nodeFlags: readonly string[], profile: { dir: string; variant: Variant } | undefined,
  slot: OffSlot, fullDbParams: ReadonlyArray<readonly [string, string]>, fullNodeFlags: readonly string[], gcLog: { file: string; variant: Variant } | undefined,
): Promise<Record<Variant, ServerHandle>> {
  const custos = built.custos.get(repoRoot)!;
  // The dataset's throwaway keys and a fresh cursor secret: what production requires instead of the development keys.
  const common = { NODE_OPTIONS: nodeOptions, DATABASE_URL: dataset.url, JWT_SECRET: secret, CURSOR_SECRET: randomBytes(48).toString('base64'), PSEUDONYM_KEY: randomBytes(32).toString('base64'), SEED_DEMO: 'never', LOG_LEVEL: 'warn', ...secretsEnv(dataset.secrets) };
  // As deployed, full sends its spans to a collector (the bench's sink); off traces nothing and the floor has no tracing.
  const full: ServerSpec = { variant: 'full', entry: custos, env: { ...common, NODE_ENV: 'production', OTEL_EXPORTER_OTLP_ENDPOINT: collector } };
  // Production refuses the off switches; the preload gives off the same graphql-js code path as full (see the file).
  const graphqlProduction = ['--import', built.graphqlProduction];
  const off: ServerSpec =
    slot.kind === 'compare'
      ? // The other checkout as deployed, compiled by its own build config and run from its own directory, with its own collector.
        { variant: 'off', entry: built.custos.get(slot.dir)!, cwd: slot.dir, env: { ...full.env, OTEL_EXPORTER_OTLP_ENDPOINT: slot.collector } }
      : slot.kind === 'switch-off'
        ? { variant: 'off', entry: custos, nodeArgs: graphqlProduction, env: switchedOffEnv(full.env, slot.off, slot.collector) }
        : { variant: 'off', entry: custos, nodeArgs: graphqlProduction, env: { ...common, AUDIT_MODE: 'off', TRACING: 'off', POLICY_DIR: 'bench/policies-off' } };
  full.env.DATABASE_URL = withSettings(dataset.url, fullDbParams);
  // On the command line, where Node takes V8's flags that NODE_OPTIONS refuses.
  if (fullNodeFlags.length) full.nodeArgs = [...fullNodeFlags];
  const floorSpec: ServerSpec = { variant: 'floor', entry: built.floor, env: common };
  const profiled = profile ? { full, off, floor: floorSpec }[profile.variant] : undefined;
  if (profile && profiled) {
    const env = { ...profiled.env, BENCH_PROFILE_DIR: profile.dir, BENCH_PROFILE_VARIANT: profile.variant };
    Object.assign(profiled, { nodeArgs: [...(profiled.nodeArgs ?? []), '--import', built.cpuProfiler], env });
  }
  // The soak watches its server's collector (bench/gc-watch.ts): what each major GC leaves tells a leak from the allocator's moods.
  const soaked = gcLog ? { full, off, floor: floorSpec }[gcLog.variant] : undefined;
  if (gcLog && soaked) Object.assign(soaked, { nodeArgs: [...(soaked.nodeArgs ?? []), '--import', built.gcWatch], env: { ...soaked.env, BENCH_GC_LOG: gcLog.file } });
  // The image's CMD flags first, on every server's command line (a V8 flag cannot go into NODE_OPTIONS).
  for (const spec of [full, off, floorSpec]) spec.nodeArgs = [...nodeFlags, ...(spec.nodeArgs ?? [])];
  const [fullServer, offServer, floor] = await Promise.all([startServer(full), startServer(off), startServer(floorSpec)]);
  return { full: fullServer, off: offServer, floor };
}

/** A fresh file for the soak's GC log, under bench/.tmp (not committed). */
function gcLogFile(): string {
  const dir = join(repoRoot, 'bench', '.tmp');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, `gc-${process.pid}.jsonl`);
  rmSync(file, { force: true });
  return file;
}

/** The off slot of this run, with a collector of its own (compareSink) started when its server traces. */
async function offSlot(args: ReturnType<typeof parse>): Promise<OffSlot> {
  if (args.compare) {
    compareSink = await startOtlpSink();
    return { kind: 'compare', dir: args.compare, collector: compareSink.url };
  }
  if (args.switchOff) {
    if (exportsWith(args.switchOff)) compareSink = await startOtlpSink();
    return { kind: 'switch-off', off: args.switchOff, collector: compareSink?.url };
  }
  return { kind: 'off' };
}

/** Dataset, tokens, servers, load worker and id pool: everything a run needs before the first window. */
async function setUp(args: ReturnType<typeof parse>): Promise<Run> {
  const p = args.profile;
  const server = postgresServer(process.env);
  console.log(`PostgreSQL server ${server.shown} (${server.from}); the bench's databases there: ${p.database}`);
  // Compiled while the dataset is checked (or seeded): the servers run as the image runs them (bench/build.ts).
  const compiling = performance.now();
  const building = buildServers([repoRoot, ...(args.compare === undefined ? [] : [args.compare])]).then((built) => ({ built, sec: (performance.now() - compiling) / 1000 }));
  building.catch(() => undefined);
  const dataset = await ensureDataset({ serverUrl: server.url, database: p.database, customers: p.customers });
  if (dataset.seedSec > 0) console.log(`seeded ${p.database} in ${dataset.seedSec.toFixed(0)} s (first run only; not counted below)`);
  console.log(
    `dataset ${p.database}: ${dataset.customers} customers, ${dataset.orders} orders, audit trail ${describeTrail(dataset.auditTrail)}; ` +
      `load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`,
  );
  const { built, sec: buildSec } = await building;
  console.log(`compiled custos${args.compare === undefined ? '' : ' (both checkouts)'} and the floor with tsc in ${buildSec.toFixed(1)} s; the servers run the compiled JavaScript`);
  const secret = randomBytes(24).toString('hex');
  const tokens = await mintTokens(secret);
  const started = performance.now();
  const profileDir = args.cpuProfile ? join(repoRoot, 'bench', 'profiles') : undefined;
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const soakProfileDir = args.soakProfile ? join(repoRoot, 'bench', '.tmp', `soak-profiles-${process.pid}`) : undefined;
  if (soakProfileDir) mkdirSync(soakProfileDir, { recursive: true });
  // A soak's profile samples every millisecond, V8's default: at 250 µs the sampling itself raised off's CPU
  // from 2.3 to 3.9 ms per request in a soak here, and the loop's lateness with it.
  const profile = profileDir ? { dir: profileDir, variant: args.profileVariant } : soakProfileDir ? { dir: soakProfileDir, variant: args.soakVariant } : undefined;
  sink = await startOtlpSink();
  // The image's options, V8's heap sized as Node sizes it in the base Deployment's container (bench/heap.ts), and with
  // --perf a symbol map of V8's JIT code (/tmp/perf-<pid>.map) for perf to name JavaScript frames; every server alike.
  const image = deployedImage();
  const nodeOptions = [image.nodeOptions, podHeapOption(repoRoot, image.nodeOptions), args.perf ? '--perf-basic-prof' : undefined].filter(Boolean).join(' ');
  const { nodeFlags } = image;
  const gcLog = args.soakSec === undefined ? undefined : gcLogFile();
  const servers = await startAll(
    built, dataset, secret, sink.url, nodeOptions, nodeFlags, profile,
    await offSlot(args), args.fullDbParams, args.fullNodeFlags, gcLog ? { file: gcLog, variant: args.soakVariant } : undefined,
  );
  const run: Run = { args, p, dataset, nodeOptions, nodeFlags, servers, worker: LoadWorker.start(), tokens, pools: { ids: [] }, ...(gcLog ? { gcLog } : {}), ...(soakProfileDir ? { soakProfileDir } : {}) };
  if (args.cpuProfile && profileDir) run.cpuProfile = { scenario: args.cpuProfile, variant: args.profileVariant, dir: profileDir, done: false };
  if (args.perf) {
    const dir = join(repoRoot, 'bench', '.tmp', 'perf');
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    run.perf = { scenarios: args.perf, dir, recorded: [] };
    perfServers = variants.map((v) => ({ pid: servers[v].pid, cwd: servers[v].cwd }));
  }
  console.log(`servers ready in ${((performance.now() - started) / 1000).toFixed(1)} s: ${variants.map((v) => `${v} ${servers[v].url} (pid ${servers[v].pid})`).join(', ')}; full's spans go to ${sink.url}`);
  run.pools.ids = await idPool(servers.full.url, tokens['u-mgr-1'], p.poolSize);
  return run;
}

/** Soak: a mix with an equal share of each scenario that the soaked server (full unless --soak-variant) answers correctly, interleaved. */
async function soakRun(run: Run, seconds: number, date: string): Promise<void> {
  const candidates = [scenarios.S1, scenarios.S2, scenarios.S3, scenarios.S4];
  const variant = run.args.soakVariant;
  const server = run.servers[variant];
  const { fullDbParams, fullNodeFlags } = run.args;
  if (fullDbParams.length || fullNodeFlags.length) {
    console.log(`full runs with ${[...fullNodeFlags, ...fullDbParams.map(([k, v]) => `PostgreSQL ${k}=${v}`)].join(', ')} for this soak`);
  }
  const problems = await sampleCheck(run, candidates);
  const usable = candidates.filter((s) => !problems.has(`${s.key}/${variant}`));
  for (const s of candidates) if (!usable.includes(s)) console.log(`soak leaves out ${s.key}: ${problems.get(`${s.key}/${variant}`)}`);
  const mix = interleave(usable.map((s) => bodiesOf(s, run.pools)), 100);
  // Only full traces (off runs with TRACING=off): its spans say where each window's time went.
  const spans = sink && variant === 'full' && server.exportsSpans ? { sink, settled: () => settledSpans(run) } : undefined;
  const gcLog = run.gcLog;
  const gc = gcLog ? { read: () => readGcLog(gcLog) } : undefined;
  // One connection of the orchestrator's own reads PostgreSQL's statistics around each window.
  const stats = postgres(run.dataset.url, { max: 1, onnotice: () => undefined });
  // PostgreSQL's processes are read from /proc only where its backends are this machine's processes (the servers' pools are open by now).
  const database = run.p.database;
  const processes = postgresBackends(database).size > 0 ? { processes: () => postgresProcesses(database) } : {};
  if (!processes.processes) console.log(`PostgreSQL's processes are not on this machine: the soak reads its statistics, not its CPU`);
  const result = await soak({
    variant, worker: run.worker, server, headers: headersFor(run, scenarios.S1), bodies: mix, seconds, rate: run.args.rate, connections: 16, ...(spans ? { spans } : {}), ...(gc ? { gc } : {}),
    ...(run.soakProfileDir ? { profileDir: run.soakProfileDir } : {}),
    pg: { read: pgActivityReader(stats), ...processes },
    host: {
      read: () => ({
        machine: machineCpu(), serverRunQueueMs: runQueueWaitMs(server.pid), benchCpuMs: cpuMs(process.pid), loadgenCpuMs: cpuMs(run.worker.pid),
      }),
      probe: machineProbeMs,
    },
  }).finally(() => stats.end({ timeout: 5 }));
  const dir = join(repoRoot, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const settings = [fullDbParams.length ? 'full-db-params' : '', fullNodeFlags.length ? 'full-node-flags' : ''].filter(Boolean).map((t) => `-${t}`).join('');
  const file = join(dir, `${unusedResultName(dir, `${date}-soak${variant === 'full' ? '' : `-${variant}`}${settings}`, ['.json'])}.json`);
  writeFileSync(file, `${JSON.stringify({
    date, variant, ...(fullDbParams.length ? { fullDbParams } : {}), ...(fullNodeFlags.length ? { fullNodeFlags } : {}), dataset: run.p.database, auditTrail: run.dataset.auditTrail, scenarios: usable.map((s) => s.key), ...result }, null, 2)}\n`);
  console.log(`written ${file}`);
}

/** Primes every server with an even mix of the sales manager's scenarios that passed the sample check. */
async function prime(run: Run, active: Scenario[], problems: Map<string, string>): Promise<void> {
  for (const variant of variants) {
    const lists = active.filter((s) => s.principal === 'u-mgr-1' && !problems.has(`${s.key}/${variant}`)).map((s) => bodiesOf(s, run.pools));
    if (lists.length === 0) continue;
    const job: LoadJob = {
      url: `${run.servers[variant].url}/graphql`, connections: 16, warmupSec: 0, durationSec: run.p.primeSec, headers: headersFor(run, scenarios.S1), bodies: interleave(lists, 50),
    };
    await run.worker.run(job, () => Promise.resolve());
  }
}

/** Throughput at one connection count: round after round, each scenario on full → off → floor, then the figures. */
async function throughputAt(
  run: Run, connections: number, active: Scenario[], problems: Map<string, string>, measurements: Measurement[], total: number,
): Promise<Report['cells'][string]> {
  const byScenario: Report['cells'][string] = {};
  for (const s of active) byScenario[s.key] = {};
  for (let round = 1; round <= run.p.rounds; round++) {
    for (const s of active) {
      const bodies = bodiesOf(s, run.pools);
      for (const variant of variants) {
        const problem = problems.get(`${s.key}/${variant}`);
        if (problem) {
          (byScenario[s.key] ??= {})[variant] = { na: `n/a (sample: ${problem})` };
          continue;
        }
        const m = await measure(run, { s, bodies, variant, connections, round });
        measurements.push(m);
        console.log(`[${measurements.length}/${total}] ${s.key} ${variant.padEnd(5)} c${connections} r${round}: ${describeLoad(m)}`);
      }
    }
  }
  for (const s of active) {
    for (const variant of variants) {
      const mine = measurements.filter((m) => m.connections === connections && m.scenario === s.key && m.variant === variant);
      if (mine.length > 0) (byScenario[s.key] ??= {})[variant] = figuresOf(mine) satisfies Cell;
    }
  }
  return byScenario;
}

const describeLoad = ({ load }: Measurement) =>
  `${load.rps.toFixed(0)} req/s, p50 ${load.p50} ms, p99 ${load.p99} ms, ${load.non2xx + load.transportErrors + load.graphqlErrors} errors`;

/**
 * The rate of each of S1–S3 that ran: half the req/s of the slower of full and
 * off at 16 connections, so that both answer it well below saturation and
 * their p99 differ by what full does per request, not by queueing. A scenario
 * where either variant has no figures (failed sample check) is left out with
 * that cell's reason.
 */
function fixedRates(byScenario: Report['cells'][string], active: Scenario[]): Pick<FixedRate, 'rates' | 'skipped'> {
  const rates: FixedRate['rates'] = {};
  const skipped: FixedRate['skipped'] = {};
  for (const s of active.filter((x) => FIXED_RATE_SCENARIOS.includes(x.key))) {
    const { full, off } = byScenario[s.key] ?? {};
    if (!isFigures(full) || !isFigures(off)) {
      skipped[s.key] = [full, off].map((c) => (c && 'na' in c ? c.na : undefined)).find(Boolean) ?? 'n/a (no throughput figures)';
      continue;
    }
    const rate = Math.round(FIXED_RATE_SHARE * Math.min(full.rps, off.rps));
    if (rate > 0) rates[s.key] = rate;
    else skipped[s.key] = 'n/a (no throughput to take a rate from)';
  }
  return { rates, skipped };
}

/** Full and off of each of S1–S3 at the same fixed rate, interleaved full → off, round after round; undefined when none of S1–S3 ran. */
async function fixedRateWindows(run: Run, active: Scenario[], byScenario: Report['cells'][string]): Promise<FixedRate | undefined> {
  if (!active.some((s) => FIXED_RATE_SCENARIOS.includes(s.key))) return undefined;
  const { rates, skipped } = fixedRates(byScenario, active);
  const timing = run.p.fixedRate;
  const chosen = active.filter((s) => rates[s.key] !== undefined);
  const pair = ['full', 'off'] as const;
  const total = run.p.rounds * chosen.length * pair.length;
  const measurements: Measurement[] = [];
  /** Full's windows whose spans the sink keeps (summarized once every one of them has arrived). */
  const watched: Measurement[] = [];
  for (let round = 1; round <= run.p.rounds; round++) {
    for (const s of chosen) {
      const rate = rates[s.key]!;
      const bodies = bodiesOf(s, run.pools);
      for (const variant of pair) {
        // Full's spans of this window are kept by the sink (the window's exact bounds are known after it). A compared
        // checkout in the off slot exports to a collector of its own, so only full's windows are watched here.
        const traced = variant === 'full' && sink && run.servers.full.exportsSpans;
        if (traced) sink!.watch(Date.now(), Date.now() + (timing.warmupSec + timing.durationSec + 60) * 1000);
        const m = await measure(run, { s, bodies, variant, connections: FIXED_RATE_CONNECTIONS, round, fixed: { rate, ...timing } });
        if (traced) watched.push(m);
        measurements.push(m);
        console.log(`[fixed ${measurements.length}/${total}] ${s.key} ${variant.padEnd(5)} at ${rate} req/s r${round}: ${describeLoad(m)}`);
      }
    }
  }
  // Every span of those windows delivered, each window's requests are summarized from them.
  if (watched.length > 0 && sink) {
    await settledSpans(run);
    for (const m of watched) if (m.windowMs) m.inside = sink.timings(m.windowMs.from, m.windowMs.to);
  }
  return { connections: FIXED_RATE_CONNECTIONS, ...timing, rounds: run.p.rounds, rates, skipped, measurements };
}

/**
 * The interleaved rounds at each connection count; right after those at 16
 * connections, while the machine is as it was when their req/s were taken,
 * the fixed-rate comparison of full and off.
 */
async function compare(run: Run, active: Scenario[], problems: Map<string, string>): Promise<{ cells: Report['cells']; measurements: Measurement[]; fixedRate?: FixedRate }> {
  const { connections: counts, rounds } = run.p;
  const cells: Report['cells'] = {};
  const measurements: Measurement[] = [];
  let fixedRate: FixedRate | undefined;
  const total = counts.length * rounds * (active.length * variants.length - problems.size);
  for (const connections of counts) {
    const byScenario = (cells[String(connections)] = await throughputAt(run, connections, active, problems, measurements, total));
    if (connections === FIXED_RATE_CONNECTIONS) fixedRate = await fixedRateWindows(run, active, byScenario);
  }
  return { cells, measurements, ...(fixedRate ? { fixedRate } : {}) };
}

async function main(): Promise<void> {
  const args = parse();
  const started = new Date();
  const date = started.toISOString().slice(0, 10);
  const loadStart = os.loadavg();
  const run = await setUp(args);
  if (args.soakSec !== undefined) return soakRun(run, args.soakSec, date);

  const s5 = auditScenario(repoRoot);
  const all: Scenario[] = [scenarios.S1, scenarios.S2, scenarios.S3, scenarios.S4, ...('key' in s5 ? [s5] : [])];
  const active = all.filter((s) => !args.only || args.only.includes(s.key));
  const problems = await sampleCheck(run, active);
  for (const [cell, problem] of problems) console.log(`sample check ${cell}: ${problem} (not loaded)`);
  await prime(run, active, problems);
  const { cells, measurements, fixedRate } = await compare(run, active, problems);
  if (!('key' in s5) && (!args.only || args.only.includes('S5'))) {
    for (const byScenario of Object.values(cells)) byScenario.S5 = { full: { na: s5.unavailable }, off: { na: s5.unavailable }, floor: { na: s5.unavailable } };
  }
  const rssEndMb = Object.fromEntries(variants.map((v) => [v, rssMb(run.servers[v].pid)]));
  // After the RSS reading above, so the export does not move it; partial runs leave it out.
  const exportStream = args.only ? undefined : await measureExport({ server: run.servers.full, customers: run.dataset.customers, tokens: { analyst: run.tokens['u-analyst-1'], dpo: run.tokens['u-dpo-1'] } });
  const spanExport = await spanExportCheck(run);
  // Wall time of this process, a first-time seed left out.
  const elapsedSec = Math.round(performance.now() / 1000 - run.dataset.seedSec);
  await stopEverything();
  const perf = run.perf ? await perfWindows(run) : undefined;

  const p = run.p;
  const meta = {
    started: started.toISOString(), mode: p.name, elapsedSec, seedSec: Math.round(run.dataset.seedSec),
    commit: commitOf(repoRoot),
    ...(args.compare ? { compare: { dir: args.compare, commit: commitOf(args.compare) } } : {}),
    ...(args.switchOff ? { switchOff: args.switchOff } : {}),
    ...(args.fullDbParams.length ? { fullDbParams: Object.fromEntries(args.fullDbParams) } : {}),
    ...(args.fullNodeFlags.length ? { fullNodeFlags: args.fullNodeFlags } : {}),
    node: process.version, nodeOptions: run.nodeOptions, nodeFlags: run.nodeFlags, cpu: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}`, loadavgStart: loadStart, loadavgEnd: os.loadavg(),
    dataset: { database: p.database, customers: run.dataset.customers, orders: run.dataset.orders, auditTrail: run.dataset.auditTrail },
    windows: { warmupSec: p.warmupSec, durationSec: p.durationSec, connections: p.connections, rounds: p.rounds, fixedRate: p.fixedRate },
    queries: Object.fromEntries(all.map((s) => [s.key, s.query])), sampleProblems: Object.fromEntries(problems),
  };
  const report: Report = {
    meta, cells, rssEndMb, measurements, ...(fixedRate ? { fixedRate } : {}), ...(exportStream ? { exportStream } : {}), ...(spanExport ? { spanExport } : {}),
    ...(perf ? { perf } : {}),
  };
  const preamble = describeRun(meta);
  console.log(`\n${preamble}\n\n${renderTables(report)}`);
  if (run.cpuProfile?.done) console.log(`\n${profileSummary(run.cpuProfile.dir)}`);
  const perfSection = perf ? renderPerf(perf, variants) : '';
  if (perfSection) console.log(`\n${perfSection}`);
  // Partial or profiled runs never overwrite the day's complete results.
  const name = [
    date, p.name === 'quick' ? 'quick' : '', args.only?.join('') ?? '', args.cpuProfile ? 'profiled' : '', args.perf ? 'perf' : '', args.compare ? 'compare' : '',
    args.switchOff ? `switch-off-${args.switchOff.join('-') || 'none'}` : '',
    args.connections ? `c${args.connections.join('-')}` : '', args.fullDbParams.length ? 'full-db-params' : '', args.fullNodeFlags.length ? 'full-node-flags' : '',
  ].filter(Boolean).join('-');
  console.log(`\nwritten ${writeResults(report, name, preamble, perfSection)} and .json`);
  console.log(JSON.stringify(summaryLine(report)));
}

let stopping = false;
function bail(code: number, message?: string): void {
  if (stopping) return;
  stopping = true;
  if (message) console.error(message);
  void stopEverything().finally(() => {
    for (const server of perfServers) removePerfFiles(server);
    process.exit(code);
  });
}
process.on('SIGINT', () => bail(130, 'interrupted: stopping servers'));
process.on('SIGTERM', () => bail(143));
main().then(
  () => bail(0),
  (e: unknown) => bail(1, `bench: ${(e as Error).message}`),
);
