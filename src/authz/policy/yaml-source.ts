import { readFile } from 'node:fs/promises';
import { LineCounter, isMap, isScalar, isSeq, parseDocument, type Document } from 'yaml';
import type { PolicyProblem } from './types.js';

export type Path = readonly (string | number)[];

/**
 * One parsed YAML file. Validation walks the plain JS value and reports
 * problems by path; the path is mapped back to a line here, so every
 * validator can say file:line without handling YAML nodes itself.
 */
export class YamlSource {
  private constructor(
    readonly file: string,
    readonly value: unknown,
    private readonly doc: Document,
    private readonly lines: LineCounter,
    private readonly problems: PolicyProblem[],
  ) {}

  /** Parses `text`; on a syntax error records it and returns undefined (nothing to validate). */
  static parse(file: string, text: string, problems: PolicyProblem[]): YamlSource | undefined {
    const lines = new LineCounter();
    const doc = parseDocument(text, { lineCounter: lines, prettyErrors: true, uniqueKeys: true });
    if (doc.errors.length > 0) {
      for (const error of doc.errors) {
        const line = error.linePos?.[0].line ?? 1;
        // The first line of yaml's message names the problem; the rest is a source excerpt.
        const reason = (error.message.split('\n')[0] ?? error.code).replace(/ at line \d+, column \d+:?$/, '');
        problems.push({ file, line, reason: `YAML syntax error: ${reason}` });
      }
      return undefined;
    }
    try {
      return new YamlSource(file, doc.toJS({ maxAliasCount: 50 }) as unknown, doc, lines, problems);
    } catch (error) {
      // toJS refuses alias bombs ("excessive alias count") and similar: a problem, not a crash.
      problems.push({ file, line: 1, reason: `YAML error: ${(error as Error).message}` });
      return undefined;
    }
  }

  /** Reads and parses a file; an unreadable file is a problem like any other. */
  static async read(file: string, problems: PolicyProblem[]): Promise<YamlSource | undefined> {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      problems.push({ file, line: 1, reason: `cannot read file (${(error as NodeJS.ErrnoException).code ?? 'error'})` });
      return undefined;
    }
    return YamlSource.parse(file, text, problems);
  }

  /** Records a problem at `path`; `onKey` points at the key of the last segment rather than its value. */
  fail(path: Path, reason: string, onKey = false): void {
    this.problems.push({ file: this.file, line: this.lineOf(path, onKey), reason });
  }

  /** The line of the node at `path`, or of its nearest existing ancestor. */
  lineOf(path: Path, onKey = false): number {
    let node: unknown = this.doc.contents;
    let offset = rangeStart(node) ?? 0;
    for (const [i, segment] of path.entries()) {
      if (isMap(node)) {
        const pair = node.items.find((p) => (isScalar(p.key) ? p.key.value : p.key) === segment);
        if (!pair) break;
        const last = i === path.length - 1;
        node = last && onKey ? pair.key : (pair.value ?? pair.key);
      } else if (isSeq(node) && typeof segment === 'number') {
        node = node.items[segment];
      } else {
        break;
      }
      const start = rangeStart(node);
      if (start === undefined) break;
      offset = start;
    }
    return this.lines.linePos(offset).line;
  }
}

function rangeStart(node: unknown): number | undefined {
  if (node && typeof node === 'object' && 'range' in node && Array.isArray(node.range)) {
    const start: unknown = node.range[0];
    return typeof start === 'number' ? start : undefined;
  }
  return undefined;
}

/** A mapping (not null, not a list). */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Checks that `value` is a mapping with only `allowed` keys and every
 * `required` key; reports each offender. Returns the mapping, or undefined
 * when it is not one.
 */
export function checkMap(
  src: YamlSource,
  value: unknown,
  path: Path,
  keys: { allowed: readonly string[]; required?: readonly string[] },
): Record<string, unknown> | undefined {
  if (!isRecord(value)) {
    src.fail(path, 'expected a mapping');
    return undefined;
  }
  for (const key of Object.keys(value)) {
    if (!keys.allowed.includes(key)) src.fail([...path, key], `unknown key "${key}" (allowed: ${keys.allowed.join(', ')})`, true);
  }
  for (const key of keys.required ?? []) {
    if (!(key in value)) src.fail(path, `missing key "${key}"`);
  }
  return value;
}

/** A string or a non-empty list of strings, as a list; reports and returns undefined otherwise. */
export function checkStringList(src: YamlSource, value: unknown, path: Path, what: string, single = false): string[] | undefined {
  if (single && typeof value === 'string') return [value];
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) {
    src.fail(path, `${what} must be ${single ? 'a string or ' : ''}a non-empty list of strings`);
    return undefined;
  }
  return value;
}
