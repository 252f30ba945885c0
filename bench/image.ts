/**
 * How the image runs custos, read from the Dockerfile, so that the bench's
 * servers run the same way: the `NODE_OPTIONS` its runtime stage sets, and
 * the flags its `CMD` puts between `node` and `dist/main.js` (V8's own flags,
 * which Node refuses in `NODE_OPTIONS`, can only be given there). The bench
 * gives both to its three servers alike.
 */

/** One Node or V8 flag as a command line takes it: `--name` or `--name=value`, no spaces. */
export function isNodeFlag(text: string): boolean {
  return /^--[a-z][a-z0-9_-]*(=\S+)?$/.test(text);
}

/** `ENV NODE_OPTIONS=…` of the Dockerfile (quoted or not). */
export function imageNodeOptions(dockerfile: string): string {
  const found = /^\s*NODE_OPTIONS=("?)([^"\s\\]+(?: [^"\s\\]+)*)\1/m.exec(dockerfile);
  if (!found) throw new Error('Dockerfile sets no NODE_OPTIONS: the bench runs custos with the options the image uses');
  return found[2]!;
}

/**
 * The flags of the image's last `CMD` (exec form), which must read
 * `["node", …flags, "dist/main.js"]`; each flag starts with `--`.
 */
export function imageNodeFlags(dockerfile: string): string[] {
  const cmds = dockerfile.split('\n').filter((line) => /^CMD\s/.test(line));
  const last = cmds.at(-1);
  if (!last) throw new Error('Dockerfile has no CMD: the bench runs custos as the image starts it');
  let argv: unknown;
  try {
    argv = JSON.parse(last.replace(/^CMD\s+/, ''));
  } catch {
    throw new Error(`Dockerfile's CMD is not in exec form (a JSON array): ${last}`);
  }
  if (!Array.isArray(argv) || argv.length < 2 || argv[0] !== 'node' || argv.at(-1) !== 'dist/main.js' || argv.some((a) => typeof a !== 'string')) {
    throw new Error(`Dockerfile's CMD must be ["node", …flags, "dist/main.js"], not ${last}`);
  }
  const flags = argv.slice(1, -1) as string[];
  const bad = flags.find((f) => !isNodeFlag(f));
  if (bad !== undefined) throw new Error(`Dockerfile's CMD gives node ${bad}, not a --flag`);
  return flags;
}
