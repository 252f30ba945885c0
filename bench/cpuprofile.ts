/** Reads a V8 .cpuprofile (node --cpu-prof) and names the functions with the most self time. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
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

/** Top functions by self time (% of busy CPU), and components by self time (native frames charged to their JavaScript caller), of the newest profile in `dir`. */
export function hotFunctions(dir: string, top = 15): { file: string; totalMs: number; functions: HotFunction[]; components: Share[]; inclusive: Share[] } {
  const newest = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
  if (!newest) throw new Error(`no .cpuprofile in ${dir}`);
  const profile = JSON.parse(readFileSync(newest, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n);
  // Native frames (builtins, crypto, buffers) are charged to the nearest JavaScript caller's component.
  const owner = (n: ProfileNode): ProfileNode => {
    let at: ProfileNode | undefined = n;
    while (at && !at.callFrame.url && !at.callFrame.functionName.startsWith('(')) at = parent.get(at.id);
    return at ?? n;
  };
  const self = new Map<string, { name: string; where: string; us: number }>();
  const components = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let total = 0;
  // The profiler's own work (inspector session, profile serialization) and idle time are left out.
  const profilerFrame = (n: ProfileNode) => /bench\/cpu-profiler\.[jt]s$/.test(n.callFrame.url) || n.callFrame.url === 'node:inspector';
  const ownWork = (n: ProfileNode | undefined): boolean => {
    for (let at = n; at; at = parent.get(at.id)) if (profilerFrame(at)) return false;
    return n?.callFrame.functionName !== '(idle)';
  };
  profile.samples.forEach((id, i) => {
    const node = byId.get(id);
    const us = profile.timeDeltas[i] ?? 0;
    if (!node || !ownWork(node)) return;
    total += us;
    const name = node.callFrame.functionName || '(anonymous)';
    const at = where(node.callFrame.url, node.callFrame.lineNumber);
    const key = `${name}@${at}`;
    const onStack = new Set<string>();
    for (let at: ProfileNode | undefined = node; at; at = parent.get(at.id)) {
      if (/\/(src|dist|node_modules)\//.test(at.callFrame.url)) onStack.add(`${at.callFrame.functionName || '(anonymous)'}  ${where(at.callFrame.url, at.callFrame.lineNumber)}`);
    }
    for (const key of onStack) inclusive.set(key, (inclusive.get(key) ?? 0) + us);
    const charged = owner(node);
    const component = componentOf(charged.callFrame.url, charged.callFrame.functionName || '(anonymous)');
    components.set(component, (components.get(component) ?? 0) + us);
    const entry = self.get(key) ?? { name, where: at, us: 0 };
    entry.us += us;
    self.set(key, entry);
  });
  const functions = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, top)
    .map((e) => ({ name: e.name, where: e.where, selfMs: e.us / 1000, pct: (100 * e.us) / total }));
  const byComponent = [...components]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, pct: (100 * us) / total }));
  const heavy = [...inclusive]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([name, us]) => ({ name, pct: (100 * us) / total }));
  return { file: newest, totalMs: total / 1000, functions, components: byComponent, inclusive: heavy };
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
