/** One Dockerfile instruction, continuation lines joined, comments dropped. */
export interface Instruction {
  keyword: string;
  args: string;
}

/** A build stage: its base image (global ARG defaults substituted), alias and instructions. */
export interface Stage {
  from: string;
  alias?: string;
  instructions: Instruction[];
}

/** Parses a Dockerfile into stages; enough for structural checks, not a full BuildKit parser. */
export function parseDockerfile(text: string): Stage[] {
  const lines = text.split('\n').filter((line) => !/^\s*#/.test(line));
  const instructions: Instruction[] = [];
  let pending = '';
  for (const line of lines) {
    pending += line.trimEnd();
    if (pending.endsWith('\\')) {
      pending = `${pending.slice(0, -1)} `;
      continue;
    }
    const match = /^\s*(\w+)\s+(.*)$/.exec(pending);
    if (match) instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim() });
    pending = '';
  }
  const globals = new Map<string, string>();
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === 'FROM') {
      const [image = '', , alias] = instruction.args.split(/\s+/).filter((part) => !part.startsWith('--'));
      const from = image.replace(/\$\{?(\w+)\}?/g, (_, name: string) => globals.get(name) ?? '');
      stages.push({ from, alias, instructions: [] });
    } else if (stages.length === 0 && instruction.keyword === 'ARG') {
      const [name, value = ''] = instruction.args.split('=', 2) as [string, string?];
      globals.set(name, value);
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}
