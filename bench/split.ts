/**
 * `--switch-off`: what each of full's switches costs, measured side by side.
 *
 * The off variant turns everything off at once (enforcement, strict audit,
 * tracing), so full/off alone cannot say which of them the price is paid for.
 * With `--switch-off audit` (or tracing, export, policy, or several,
 * comma-separated) the off slot runs full's configuration with only those
 * switched off, and full/off reads "the price of those switches". `export`
 * keeps tracing on but gives the spans to no collector: the price of sending
 * them out, apart from making them. Production refuses the audit and tracing
 * switches, so that server runs as the off variant does: in development mode
 * with graphql-js preloaded in its production mode; `--switch-off none`
 * measures that difference alone, switching nothing off.
 */

export const switches = ['audit', 'tracing', 'export', 'policy'] as const;
export type Switch = (typeof switches)[number];

/** What each switch does to the server's environment (export: leaving out the collector, below). */
const switchEnv: Record<Switch, Record<string, string>> = {
  audit: { AUDIT_MODE: 'off' },
  tracing: { TRACING: 'off' },
  // Spans still made and ended as full makes them (AUDIT_MODE and the policy untouched), but given to no collector:
  // what sending them out costs (the OTLP transform, the POSTs, the spans held until then) apart from making them.
  export: {},
  // Every role reads every field of every row, no reveal rules (bench/policies-off, as for the off variant).
  policy: { POLICY_DIR: 'bench/policies-off' },
};

/** Parses `--switch-off`: `none` (nothing off), or switch names separated by commas. */
export function parseSwitchOff(text: string): Switch[] {
  const names = text.split(',').map((n) => n.trim()).filter(Boolean);
  if (names.length === 1 && names[0] === 'none') return [];
  const unknown = names.filter((n) => !(switches as readonly string[]).includes(n));
  if (names.length === 0 || unknown.length > 0) {
    throw new Error(`--switch-off takes none, or one or more of ${switches.join(',')} separated by commas${unknown.length ? ` (not ${unknown.join(',')})` : ''}`);
  }
  return [...new Set(names as Switch[])].sort((a, b) => switches.indexOf(a) - switches.indexOf(b));
}

/**
 * The off slot's environment: full's, in development mode, with the chosen
 * switches off. Its spans go to `collector` (a sink of its own, so that full's
 * count stays full's); with tracing or export off it exports nothing and needs none.
 */
export function switchedOffEnv(fullEnv: Record<string, string>, off: readonly Switch[], collector: string | undefined): Record<string, string> {
  const { OTEL_EXPORTER_OTLP_ENDPOINT: _fulls, ...rest } = fullEnv;
  const env: Record<string, string> = { ...rest, NODE_ENV: 'development', AUDIT_MODE: 'strict', TRACING: 'on' };
  for (const s of off) Object.assign(env, switchEnv[s]);
  if (exportsWith(off)) {
    if (collector === undefined) throw new Error('--switch-off: a server that exports its spans needs a collector of its own');
    env.OTEL_EXPORTER_OTLP_ENDPOINT = collector;
  }
  return env;
}

/** Whether the off slot's server sends spans to a collector (and needs one of its own) with these switches off. */
export function exportsWith(off: readonly Switch[]): boolean {
  return !off.includes('tracing') && !off.includes('export');
}

/** How the reports name the off slot of such a run. */
export function describeSwitchOff(off: readonly Switch[]): string {
  return off.length === 0 ? 'nothing switched off' : `${off.join(' and ')} switched off`;
}
