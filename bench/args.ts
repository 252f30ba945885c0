/**
 * The bench's command line, checked before anything starts: every option is
 * validated here, and an option the chosen mode would ignore is refused
 * rather than dropped in silence (a `--rounds 3` that ran one round, or a
 * `--profile S1` with `--scenarios S3` that profiled nothing, would report
 * figures that are not what was asked for). Checks that need the machine
 * (perf available, the other checkout present) stay in run.ts.
 */
import { parseArgs } from 'node:util';
import { isNodeFlag } from './image.js';
import { scenarioKeys, type ScenarioKey } from './scenarios.js';
import { parseSwitchOff, type Switch } from './split.js';

/** The servers a soak can load (bench/servers.ts's variants). */
export const SOAK_VARIANTS = ['full', 'off', 'floor'] as const;
export type SoakVariant = (typeof SOAK_VARIANTS)[number];

export interface BenchArgs {
  help: boolean;
  quick: boolean;
  /** Interleaved rounds, when given; else the profile's. */
  rounds: number | undefined;
  /** The scenarios to run, in the bench's order; undefined: all. */
  only: ScenarioKey[] | undefined;
  soakSec: number | undefined;
  /** Requests a second in the soak. */
  rate: number;
  cpuProfile: ScenarioKey | undefined;
  profileVariant: 'full' | 'off';
  /**
   * The server the soak loads: full as deployed; off, or the floor, to tell what drifts in the machine and
   * the base (Node, graphql-js, postgres.js) from what drifts in enforcement, audit and tracing.
   */
  soakVariant: SoakVariant;
  /** CPU profiles of the soaked server in three early windows and the last three, compared (bench/cpuprofile.ts profileShift). */
  soakProfile: boolean;
  perf: ScenarioKey[] | undefined;
  /** The other checkout's directory, as given (resolved and checked by run.ts). */
  compare: string | undefined;
  fullDbParams: Array<readonly [string, string]>;
  /** V8 and Node flags on full's command line only (`--NAME[=VALUE]`). */
  fullNodeFlags: string[];
  /** Connection counts of the throughput windows, when given; else the profile's. */
  connections: number[] | undefined;
  switchOff: Switch[] | undefined;
}

export const MAX_ROUNDS = 20;
export const DEFAULT_SOAK_RATE = 100;
export const MAX_SOAK_RATE = 10_000;
export const MAX_CONNECTIONS = 256;
const SOAK_SECONDS = { min: 10, max: 24 * 3600 };
/** --soak-profile profiles windows 4–6 and the last three of the soak's 10 s windows: nine at least. */
export const SOAK_PROFILE_MIN_SEC = 90;

/** A whole number written in decimal digits within [min, max], or undefined (no exponents, signs, fractions or spaces). */
function wholeNumber(text: string, min: number, max: number): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n >= min && n <= max ? n : undefined;
}

/** Scenario names separated by commas: known, each once, in the bench's order. */
function scenarioList(option: string, text: string): ScenarioKey[] {
  const names = text.split(',').map((n) => n.trim());
  const unknown = names.filter((n) => !(scenarioKeys as readonly string[]).includes(n));
  if (unknown.length > 0) {
    throw new Error(`${option} takes ${scenarioKeys.join(',')} separated by commas${unknown.some(Boolean) ? ` (not ${unknown.filter(Boolean).join(',')})` : ''}`);
  }
  return scenarioKeys.filter((k) => names.includes(k));
}

/** Parses and checks `npm run bench -- …`; throws an Error whose message is the whole explanation. */
export function parseBenchArgs(argv: string[]): BenchArgs {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: 'boolean' }, soak: { type: 'string' }, rate: { type: 'string' }, rounds: { type: 'string' },
      scenarios: { type: 'string' }, profile: { type: 'string' }, 'profile-variant': { type: 'string' }, 'soak-variant': { type: 'string' }, 'soak-profile': { type: 'boolean' }, perf: { type: 'string' }, help: { type: 'boolean' },
      compare: { type: 'string' }, 'full-db-param': { type: 'string', multiple: true }, 'switch-off': { type: 'string' },
      connections: { type: 'string' }, 'full-node-flag': { type: 'string', multiple: true },
    },
  });
  const help = values.help ?? false;
  const quick = values.quick ?? false;

  const soakSec = values.soak === undefined ? undefined : wholeNumber(values.soak, SOAK_SECONDS.min, SOAK_SECONDS.max);
  if (values.soak !== undefined && soakSec === undefined) throw new Error(`--soak takes ${SOAK_SECONDS.min}..${SOAK_SECONDS.max} seconds`);
  const soak = soakSec !== undefined;
  if (values.rate !== undefined && !soak) throw new Error('--rate sets the soak\'s rate: only with --soak');
  const rate = values.rate === undefined ? DEFAULT_SOAK_RATE : wholeNumber(values.rate, 1, MAX_SOAK_RATE);
  if (rate === undefined) throw new Error(`--rate takes 1..${MAX_SOAK_RATE} requests a second`);

  const rounds = values.rounds === undefined ? undefined : wholeNumber(values.rounds, 1, MAX_ROUNDS);
  if (values.rounds !== undefined && rounds === undefined) throw new Error(`--rounds takes a whole number 1..${MAX_ROUNDS}`);
  const only = values.scenarios === undefined ? undefined : scenarioList('--scenarios', values.scenarios);
  let connections: number[] | undefined;
  if (values.connections !== undefined) {
    const counts = values.connections.split(',').map((c) => wholeNumber(c.trim(), 1, MAX_CONNECTIONS));
    if (counts.length === 0 || counts.some((c) => c === undefined)) throw new Error(`--connections takes counts 1..${MAX_CONNECTIONS} separated by commas`);
    connections = [...new Set(counts as number[])].sort((a, b) => a - b);
  }
  const soakChoice = values['soak-variant'];
  if (soakChoice !== undefined && !(SOAK_VARIANTS as readonly string[]).includes(soakChoice)) throw new Error(`--soak-variant takes ${SOAK_VARIANTS.join(', ')}`);
  if (soakChoice !== undefined && !soak) throw new Error('--soak-variant chooses the server the soak loads: only with --soak');
  const soakVariant = (soakChoice ?? 'full') as SoakVariant;
  const soakProfile = values['soak-profile'] === true;
  if (soakProfile && !soak) throw new Error('--soak-profile profiles the soaked server: only with --soak');
  if (soakProfile && soakSec !== undefined && soakSec < SOAK_PROFILE_MIN_SEC) throw new Error(`--soak-profile compares three early windows with the last three: a soak of ${SOAK_PROFILE_MIN_SEC} s at least`);
  if (soak) {
    // The soak runs one server alone on a fixed mix of S1–S4 for its whole duration, over 16 connections.
    // Full's own settings apply to a soak of full (to soak it with a flag, e.g. V8's heap growth), to none other.
    const fullOnly = soakVariant === 'full' ? [] : (['full-db-param', 'full-node-flag'] as const);
    const ignored = (['rounds', 'scenarios', 'connections', 'profile', 'perf', 'compare', 'switch-off', ...fullOnly] as const).filter((o) => values[o] !== undefined);
    if (ignored.length > 0) throw new Error(`--soak runs one server alone on a mix of S1–S4: not with ${ignored.map((o) => `--${o}`).join(', ')}${fullOnly.length ? ` (they set full's, and this soak loads ${soakVariant})` : ''}`);
  }

  let cpuProfile: ScenarioKey | undefined;
  if (values.profile !== undefined) {
    if (!(scenarioKeys as readonly string[]).includes(values.profile)) throw new Error(`--profile takes one of ${scenarioKeys.join(',')}`);
    cpuProfile = values.profile as ScenarioKey;
    if (only && !only.includes(cpuProfile)) throw new Error('--profile names a scenario that --scenarios leaves out');
  }
  const variant = values['profile-variant'];
  if (variant !== undefined && variant !== 'full' && variant !== 'off') throw new Error('--profile-variant takes full or off');
  if (variant !== undefined && cpuProfile === undefined) throw new Error('--profile-variant chooses the server --profile profiles: only with --profile');
  const profileVariant = variant ?? 'full';

  const perf = values.perf === undefined ? undefined : scenarioList('--perf', values.perf);
  if (perf) {
    if (only && perf.some((s) => !only.includes(s))) throw new Error('--perf names a scenario that --scenarios leaves out');
    if (cpuProfile) throw new Error('--perf records the throughput windows: not with --profile (V8 would profile the same server)');
  }

  const switchOff = values['switch-off'] === undefined ? undefined : parseSwitchOff(values['switch-off']);
  if (switchOff && values.compare !== undefined) throw new Error('--switch-off runs in the off slot: not with --compare');
  const fullDbParams = (values['full-db-param'] ?? []).map((pair) => {
    const found = /^([a-z_][a-z0-9_.]*)=(.+)$/.exec(pair);
    if (!found) throw new Error(`--full-db-param takes NAME=VALUE (a PostgreSQL setting), not ${pair}`);
    return [found[1]!, found[2]!] as const;
  });

  // Given without their dashes (`max-semi-space-size=64`), so that parseArgs does not take them for options of its own.
  const fullNodeFlags = (values['full-node-flag'] ?? []).map((flag) => {
    if (!isNodeFlag(`--${flag}`)) throw new Error(`--full-node-flag takes NAME or NAME=VALUE without the leading dashes (max-semi-space-size=64), not ${flag}`);
    return `--${flag}`;
  });

  return { help, quick, rounds, only, soakSec, rate, cpuProfile, profileVariant, soakVariant, soakProfile, perf, compare: values.compare, fullDbParams, fullNodeFlags, connections, switchOff };
}
