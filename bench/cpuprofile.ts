/** Reads a V8 .cpuprofile (node --cpu-prof) and names the functions with the most self time. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { median, nearestRank } from './quantile.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface Share {
  name: string;
  pct: number;
}

export interface HotFunction {
  name: string;
  where: string;
  selfMs: number;
  pct: number;
}

/** A frame's file from its last src/, bench/ or dist/ folder on (the servers run compiled: custos from dist/, the floor from bench/.tmp/build/). */
function where(url: string, line: number): string {
  const path = url.replace(/^file:\/\//, '');
  const short = path.includes('node_modules/') ? path.slice(path.lastIndexOf('node_modules/') + 13) : path.replace(/^.*\/(src|bench|dist)\//, '$1/');
  return short ? `${short}:${line + 1}` : '(native)';
}

/** Who a frame belongs to: a package, a folder of src/ (dist/ is src/ compiled) or bench/, or the engine. */
export function componentOf(url: string, name: string): string {
  if (!url) return name.startsWith('(') ? name : '(native)';
  const path = url.replace(/^file:\/\//, '');
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(path.slice(path.lastIndexOf('node_modules/')));
  if (pkg) return pkg[1]!;
  const own = /.*\/(src|bench|dist)\/([^/]+)/.exec(path);
  if (own) {
    const folder = own[1] === 'dist' ? 'src' : own[1]!;
    return own[2]!.includes('.') ? `${folder}/${own[2]}` : `${folder}/${own[2]}/`;
  }
  return path.startsWith('node:') ? 'node:internal' : path;
}

/** Where a profile's busy samples went: own work only (the profiler's and idle samples are left out). */
export interface ProfileWork {
  /** Busy time, µs. */
  busyUs: number;
  /** Self time per function (`name@file:line`), µs. */
  functions: Map<string, { name: string; where: string; us: number }>;
  /** Self time per component (native frames charged to their JavaScript caller), µs. */
  components: Map<string, number>;
  /** Inclusive time per function of src/, dist/ or a package, µs. */
  inclusive: Map<string, number>;
  /**
   * How long the thread stayed busy each time it left the event loop's wait, ms, in the order they ran: a run of
   * samples that are not (idle), from its first sample to the next idle one (so up to one sampling interval long).
   * Only these block the loop: what the soak's loop lateness measures, seen from inside.
   */
  stretchesMs: number[];
  /** Self time per component within the stretches of at least LONG_STRETCH_MS, µs. */
  longComponents: Map<string, number>;
}

/** A busy stretch this long or longer holds the loop for as long as the soak's p99 lateness (5–12 ms in the soaks here). */
export const LONG_STRETCH_MS = 5;

export function readProfile(file: string): CpuProfile {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Partial<CpuProfile>;
  if (!Array.isArray(profile.nodes) || !Array.isArray(profile.samples) || !Array.isArray(profile.timeDeltas) || profile.samples.length !== profile.timeDeltas.length) {
    throw new Error(`${file} is not a V8 CPU profile (nodes, samples and timeDeltas of the same length)`);
  }
  return profile as CpuProfile;
}

/** Self time by function and component, inclusive time, and the busy stretches of a profile. */
export function profileWork(profile: CpuProfile): ProfileWork {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  // Native frames (builtins, crypto, buffers) are charged to the nearest JavaScript caller's component.
  const owner = (n: ProfileNode): ProfileNode => {
    let at: ProfileNode | undefined = n;
    while (at && !at.callFrame.url && !at.callFrame.functionName.startsWith('(')) at = parent.get(at.id);
    return at ?? n;
  };
  const work: ProfileWork = { busyUs: 0, functions: new Map(), components: new Map(), inclusive: new Map(), stretchesMs: [], longComponents: new Map() };
  // The profiler's own work (inspector session, profile serialization) and idle time are left out.
  const profilerFrame = (n: ProfileNode) => /bench\/cpu-profiler\.[jt]s$/.test(n.callFrame.url) || n.callFrame.url === 'node:inspector';
  const ownWork = (n: ProfileNode | undefined): boolean => {
    for (let at = n; at; at = parent.get(at.id)) if (profilerFrame(at)) return false;
    return n?.callFrame.functionName !== '(idle)';
  };
  // A sample stands for the time until the next one (as DevTools reads a profile), the last for one median
  // interval: a wait for a core while a task runs is charged to that task, and a stretch's length is its samples' sum.
  const last = profile.timeDeltas.length > 0 ? median(profile.timeDeltas) : 0;
  // The current stretch: its length so far and its samples' components.
  let stretch: { us: number; parts: Map<string, number> } | undefined;
  const close = () => {
    if (!stretch) return;
    const ms = stretch.us / 1000;
    work.stretchesMs.push(ms);
    if (ms >= LONG_STRETCH_MS) for (const [c, us] of stretch.parts) work.longComponents.set(c, (work.longComponents.get(c) ?? 0) + us);
    stretch = undefined;
  };
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const us = profile.timeDeltas[i + 1] ?? last;
    if (!node || node.callFrame.functionName === '(idle)') return close();
    stretch ??= { us: 0, parts: new Map() };
    stretch.us += us;
    if (!ownWork(node)) return;
    work.busyUs += us;
    const name = node.callFrame.functionName || '(anonymous)';
    const at = where(node.callFrame.url, node.callFrame.lineNumber);
    const onStack = new Set<string>();
    for (let at: ProfileNode | undefined = node; at; at = parent.get(at.id)) {
      if (/\/(src|dist|node_modules)\//.test(at.callFrame.url)) onStack.add(`${at.callFrame.functionName || '(anonymous)'}  ${where(at.callFrame.url, at.callFrame.lineNumber)}`);
    }
    for (const key of onStack) work.inclusive.set(key, (work.inclusive.get(key) ?? 0) + us);
    const charged = owner(node);
    const component = componentOf(charged.callFrame.url, charged.callFrame.functionName || '(anonymous)');
    work.components.set(component, (work.components.get(component) ?? 0) + us);
    stretch.parts.set(component, (stretch.parts.get(component) ?? 0) + us);
    const key = `${name}@${at}`;
    const entry = work.functions.get(key) ?? { name, where: at, us: 0 };
    entry.us += us;
    work.functions.set(key, entry);
  });
  close();
  return work;
}

/** The newest .cpuprofile in `dir`. */
function newestProfile(dir: string): string {
  const newest = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!newest) throw new Error(`no .cpuprofile in ${dir}`);
  return newest;
}

/** Top functions by self time (% of busy CPU), and components by self time (native frames charged to their JavaScript caller), of the newest profile in `dir`. */
export function hotFunctions(dir: string, top = 15): { file: string; totalMs: number; functions: HotFunction[]; components: Share[]; inclusive: Share[] } {
  const file = newestProfile(dir);
  const work = profileWork(readProfile(file));
  const total = work.busyUs;
  const functions = [...work.functions.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, pct: (100 * e.us) / total }));
  const shares = (m: Map<string, number>) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, us]) => ({ name, pct: (100 * us) / total }));
  return { file, totalMs: total / 1000, functions, components: shares(work.components), inclusive: shares(work.inclusive) };
}

/** The profile's hottest functions and components as printable lines. */
export function profileSummary(dir: string): string {
  const hot = hotFunctions(dir);
  const lines = [`CPU profile ${hot.file} (${hot.totalMs.toFixed(0)} ms busy), top self time:`];
  for (const h of hot.functions) lines.push(`  ${h.pct.toFixed(1).padStart(5)} %  ${h.name}  ${h.where}`);
  for (const [title, shares] of [['self time by component (native frames charged to their caller)', hot.components], ['inclusive time', hot.inclusive]] as const) {
    lines.push(`${title}:`);
    for (const c of shares) lines.push(`  ${c.pct.toFixed(1).padStart(5)} %  ${c.name}`);
  }
  return lines.join('\n');
}

/** A profile's busy stretches, summed up: ms, and how many of them per thousand requests. */
export interface StretchSummary {
  perThousandRequests: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Stretches of at least LONG_STRETCH_MS per thousand requests, and their share of the busy time, %. */
  longPerThousandRequests: number;
  longBusyPct: number;
}

export function stretchSummary(work: ProfileWork, requests: number): StretchSummary {
  const sorted = [...work.stretchesMs].sort((a, b) => a - b);
  const long = sorted.filter((ms) => ms >= LONG_STRETCH_MS);
  const longUs = [...work.longComponents.values()].reduce((a, b) => a + b, 0);
  const perThousand = (n: number) => (requests > 0 ? (1000 * n) / requests : NaN);
  return {
    perThousandRequests: perThousand(sorted.length),
    p50Ms: nearestRank(sorted, 0.5),
    p99Ms: nearestRank(sorted, 0.99),
    maxMs: sorted.at(-1) ?? NaN,
    longPerThousandRequests: perThousand(long.length),
    longBusyPct: work.busyUs > 0 ? (100 * longUs) / work.busyUs : NaN,
  };
}

/** One name's time per request in two profiles, ms. */
export interface Shift {
  name: string;
  early: number;
  late: number;
}

/** What changed between two profiles of the same server under the same load (a soak's early and late windows), per request. */
export interface ProfileShift {
  busyMsPerRequest: { early: number; late: number };
  stretches: { early: StretchSummary; late: StretchSummary };
  /** Components by self time, the largest late first. */
  components: Shift[];
  /** Functions by self time whose time per request grew most. */
  grown: Shift[];
  /** Components within the long stretches, per request, the largest late first. */
  longComponents: Shift[];
}

export function profileShift(early: { work: ProfileWork; requests: number }, late: { work: ProfileWork; requests: number }, top = 10): ProfileShift {
  const perRequest = (us: number, requests: number) => (requests > 0 ? us / 1000 / requests : NaN);
  const shifts = (pick: (w: ProfileWork) => Map<string, number>) => {
    const names = new Set([...pick(early.work).keys(), ...pick(late.work).keys()]);
    return [...names].map((name) => ({
      name,
      early: perRequest(pick(early.work).get(name) ?? 0, early.requests),
      late: perRequest(pick(late.work).get(name) ?? 0, late.requests),
    }));
  };
  const selfOf = (w: ProfileWork) => new Map([...w.functions.values()].map((f) => [`${f.name}  ${f.where}`, f.us]));
  const byLate = (a: Shift, b: Shift) => b.late - a.late;
  return {
    busyMsPerRequest: { early: perRequest(early.work.busyUs, early.requests), late: perRequest(late.work.busyUs, late.requests) },
    stretches: { early: stretchSummary(early.work, early.requests), late: stretchSummary(late.work, late.requests) },
    components: shifts((w) => w.components).sort(byLate).slice(0, top),
    grown: shifts(selfOf)
      .filter((s) => s.late > s.early)
      .sort((a, b) => b.late - b.early - (a.late - a.early))
      .slice(0, top),
    longComponents: shifts((w) => w.longComponents).sort(byLate).slice(0, top),
  };
}

/** The shift as printable lines. */
export function shiftSummary(shift: ProfileShift, labels: { early: string; late: string }): string {
  const ms = (v: number) => (Number.isFinite(v) ? v.toFixed(3) : '—');
  const row = (s: Shift) => `  ${ms(s.early).padStart(7)} → ${ms(s.late).padEnd(7)}  ${s.name}`;
  const st = (s: StretchSummary) =>
    `${s.perThousandRequests.toFixed(0)} per 1,000 requests, p50 ${s.p50Ms.toFixed(2)} ms, p99 ${s.p99Ms.toFixed(2)} ms, longest ${s.maxMs.toFixed(1)} ms; ` +
    `${s.longPerThousandRequests.toFixed(1)} of ≥ ${LONG_STRETCH_MS} ms per 1,000 requests, ${s.longBusyPct.toFixed(1)} % of the busy time`;
  return [
    `CPU profile of the soaked server, ${labels.early} against ${labels.late}: busy ${ms(shift.busyMsPerRequest.early)} → ${ms(shift.busyMsPerRequest.late)} ms per request`,
    `busy stretches (the loop held without a wait), ${labels.early}: ${st(shift.stretches.early)}`,
    `busy stretches, ${labels.late}: ${st(shift.stretches.late)}`,
    'self time by component, ms per request:',
    ...shift.components.map(row),
    `within the stretches of ≥ ${LONG_STRETCH_MS} ms, ms per request:`,
    ...shift.longComponents.map(row),
    'functions whose self time per request grew most, ms per request:',
    ...shift.grown.map(row),
  ].join('\n');
}
