/**
 * The export CLI's output: a file that only ever grows by whole pages, and
 * beside it FILE.export-state.json saying how far FILE is valid and where
 * the export continues. A page is written and fsynced before the state moves
 * on, and the state is replaced atomically (temp file, fsync, rename), so
 * after any crash FILE up to the recorded length plus the recorded cursor
 * describe the export exactly: no duplicates, no gaps.
 */
import { open, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';

export type Format = 'ndjson' | 'csv';

/** What the state file records. */
export interface ExportState {
  grant: string;
  format: Format;
  /** Where the export continues (null: from the start). */
  cursor: string | null;
  rows: number;
  /** FILE's length after the last complete page. */
  bytes: number;
  done: boolean;
}

/** FILE cannot be used for this export without --force (it holds something else). */
export class OutputInUse extends Error {}

const statePathOf = (file: string) => `${file}.export-state.json`;

async function readState(path: string): Promise<ExportState | 'unreadable' | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    const s = JSON.parse(text) as Partial<ExportState>;
    if (typeof s.grant === 'string' && (s.format === 'ndjson' || s.format === 'csv') && Number.isSafeInteger(s.rows) && Number.isSafeInteger(s.bytes)) {
      return { grant: s.grant, format: s.format, cursor: typeof s.cursor === 'string' ? s.cursor : null, rows: s.rows!, bytes: s.bytes!, done: s.done === true };
    }
  } catch {
    // Falls through: a state file this version cannot read.
  }
  return 'unreadable';
}

/** Written beside, synced, then renamed over: the state file is always the old one or the new one, never half of each. */
async function saveState(path: string, state: ExportState): Promise<void> {
  const temp = `${path}.tmp`;
  const fh = await open(temp, 'w', 0o600);
  try {
    await fh.writeFile(`${JSON.stringify(state)}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(temp, path);
}

/** An open export file: where the export stands, and the only way to add to it. */
export class ExportFile {
  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly state: ExportState,
    readonly resumed: boolean,
  ) {}

  get statePath(): string {
    return statePathOf(this.path);
  }

  /**
   * FILE for `grant` in `format`: continued at the recorded length when its
   * state file matches (a page cut short by a crash is dropped), else
   * started empty, which needs `force` when FILE or another export's state
   * is in the way.
   */
  static async open(opts: { path: string; grant: string; format: Format; force: boolean }): Promise<ExportFile> {
    const statePath = statePathOf(opts.path);
    const saved = await readState(statePath);
    const size = await stat(opts.path).then((s) => s.size, () => -1);
    const matches = saved !== undefined && saved !== 'unreadable' && saved.grant === opts.grant && saved.format === opts.format;
    if (matches && size >= saved.bytes) {
      const fh = await open(opts.path, 'r+');
      await fh.truncate(saved.bytes);
      return new ExportFile(opts.path, fh, saved, true);
    }
    if (!opts.force) {
      if (matches) throw new OutputInUse(`${opts.path} is shorter than ${statePath} records (${Math.max(size, 0)} < ${saved.bytes} bytes): run with --force to start over`);
      if (saved === 'unreadable') throw new OutputInUse(`${statePath} cannot be read: run with --force to start over`);
      if (saved) throw new OutputInUse(`${statePath} belongs to another export (grant ${saved.grant}, ${saved.format}): finish it, or run with --force to start this one over`);
      if (size >= 0) throw new OutputInUse(`${opts.path} exists and no export of it is under way: run with --force to overwrite it`);
    }
    const fh = await open(opts.path, 'w', 0o600);
    const state: ExportState = { grant: opts.grant, format: opts.format, cursor: null, rows: 0, bytes: 0, done: false };
    // From here on FILE is this export's: an interruption even before the first page resumes.
    await saveState(statePath, state);
    return new ExportFile(opts.path, fh, state, false);
  }

  /** Appends a whole page and syncs it; only then does the state move on (to `next`, done when null). */
  async append(page: { body: Buffer; rows: number; next: string | null }): Promise<void> {
    await this.write(page);
    Object.assign(this.state, { cursor: page.next, done: page.next === null });
    await saveState(this.statePath, this.state);
  }

  /** Appends a last page after which nothing can follow (the grant ran out): the state file goes, FILE stays. */
  async appendLast(page: { body: Buffer; rows: number }): Promise<void> {
    await this.write(page);
    await rm(this.statePath, { force: true });
  }

  /** The export is over (complete, or impossible to continue): FILE stays, its state goes. */
  async finish(): Promise<void> {
    await this.fh.close();
    await rm(this.statePath, { force: true });
  }

  /** Stops here, keeping the state to resume from. */
  async close(): Promise<void> {
    await this.fh.close();
  }

  /** Removes FILE and its state (nothing was written worth keeping). */
  async discard(): Promise<void> {
    await this.fh.close();
    await rm(this.statePath, { force: true });
    await rm(this.path, { force: true });
  }

  private async write(page: { body: Buffer; rows: number }): Promise<void> {
    await this.fh.write(page.body, 0, page.body.length, this.state.bytes);
    await this.fh.sync();
    this.state.rows += page.rows;
    this.state.bytes += page.body.length;
  }
}
