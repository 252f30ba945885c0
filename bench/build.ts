/**
 * The servers the bench measures run as the image runs custos: compiled by
 * tsc from the checkout's own tsconfig.build.json into its dist/ (what the
 * Dockerfile's build stage and `npm run build` do) and started by plain
 * `node dist/main.js`, with no TypeScript loader in the process. Under tsx
 * (the bench's own runner) each custos server held ~80 MB more RSS: tsx's
 * loader and esbuild's transforms, a constant that flattered full/off RSS and
 * sat in every soak's memory. The floor and the bench's preloads (the off
 * variant's graphql-js switch, the CPU profiler, the soak's GC watch) are
 * compiled the same way, by bench/tsconfig.servers.json into bench/.tmp/build.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './servers.js';

const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');

/** The compiled entry points the bench starts and preloads (absolute paths). */
export interface Built {
  /** custos's compiled entry in each checkout built (this one, and the --compare one). */
  custos: Map<string, string>;
  floor: string;
  graphqlProduction: string;
  cpuProfiler: string;
  gcWatch: string;
}

/** Where tsc puts the bench's own server-side files (see bench/tsconfig.servers.json). */
const benchBuildDir = join(repoRoot, 'bench', '.tmp', 'build', 'bench');

/**
 * Runs tsc on one project; rejects with what tsc printed when it fails. Emit
 * only (`--noCheck`): the JavaScript is byte for byte what a checked build
 * emits (compared on dist/ in session 17), in about half the time, which the
 * quick run's three minutes need; type errors are `npm run typecheck`'s.
 */
function compile(project: string): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [tsc, '-p', project, '--noCheck'], { maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (!error) return resolve();
      const said = `${stdout}${stderr}`.trim().slice(-4000);
      reject(new Error(`tsc -p ${project} failed${said ? `:\n${said}` : ` (${error.message})`}`));
    });
  });
}

/** The build config a checkout's custos is compiled with; throws when the checkout has none. */
export function buildProject(checkout: string): string {
  const project = join(checkout, 'tsconfig.build.json');
  if (!existsSync(project)) throw new Error(`${checkout} has no tsconfig.build.json: the bench runs custos compiled, as the image does`);
  return project;
}

/** Compiles custos in each checkout (into its dist/) and the bench's own servers, all at once. */
export async function buildServers(checkouts: readonly string[]): Promise<Built> {
  const projects = checkouts.map(buildProject);
  await Promise.all([...projects.map(compile), compile(join(repoRoot, 'bench', 'tsconfig.servers.json'))]);
  const built: Built = {
    custos: new Map(checkouts.map((dir) => [dir, join(dir, 'dist', 'main.js')])),
    floor: join(benchBuildDir, 'floor-server.js'),
    graphqlProduction: join(benchBuildDir, 'graphql-production.js'),
    cpuProfiler: join(benchBuildDir, 'cpu-profiler.js'),
    gcWatch: join(benchBuildDir, 'gc-watch.js'),
  };
  const missing = [...built.custos.values(), built.floor, built.graphqlProduction, built.cpuProfiler, built.gcWatch].filter((f) => !existsSync(f));
  if (missing.length > 0) throw new Error(`the build left out ${missing.join(', ')}`);
  return built;
}
