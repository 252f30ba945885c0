/**
 * `npm run export -- --dataset NAME --out FILE`: pulls the rows of one's own
 * approved export grant into FILE, page by page, resumable. FILE only ever
 * grows by whole pages: each page is written and fsynced before the state
 * file beside it (FILE.export-state.json) moves on, so an interrupted run
 * continues where the last complete page ended, with no duplicates or gaps.
 */
import { parseArgs } from 'node:util';
import { fetchPage, findGrant, graphqlClient, Interrupted, Refusal, sourceTotal, Stop, withRetry, type Connection, type Grant, type Page } from './export-client.js';
import { ExportFile, OutputInUse, type Format } from './export-file.js';

const usage = `usage: npm run export -- (--dataset NAME | --grant ID) --out FILE [--format ndjson|csv]
                          [--url URL] [--token TOKEN] [--page N] [--force]
  Pulls the rows of your approved export grant into FILE. Run the same command
  again after an interruption to resume; FILE.export-state.json records progress.
  --dataset NAME  use your newest approved grant for this dataset
  --grant ID      use this grant (required for customer-list exports)
  --out FILE      where the rows go
  --format F      ndjson (default) or csv
  --url URL       custos base URL (default http://127.0.0.1:4000)
  --token TOKEN   bearer token; prefer the CUSTOS_TOKEN environment variable
  --page N        rows per request, 1..10000 (default 5000)
  --force         overwrite FILE although no export of it is under way
exit: 0 done, 1 interrupted (run again to resume), 2 usage or no grant, 3 refused by custos, 130 Ctrl-C`;

const MAX_PAGE = 10_000;

interface Args {
  dataset?: string | undefined;
  grant?: string | undefined;
  out: string;
  format: Format;
  url: URL;
  token: string;
  page: number;
  force: boolean;
}

/** A mistake in the command line: reported with the usage. */
class UsageError extends Stop {
  constructor(message: string) {
    super(message, 2);
  }
}

function parse(argv: string[], env: NodeJS.ProcessEnv): Args {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        dataset: { type: 'string' }, grant: { type: 'string' }, out: { type: 'string' }, format: { type: 'string' },
        url: { type: 'string' }, token: { type: 'string' }, page: { type: 'string' }, force: { type: 'boolean' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const wrong = (message: string) => new UsageError(message);
  if (!values.dataset && !values.grant) throw wrong('name --dataset or --grant');
  if (!values.out) throw wrong('--out FILE is required');
  const format = values.format ?? 'ndjson';
  if (format !== 'ndjson' && format !== 'csv') throw wrong(`--format must be ndjson or csv, got "${format}"`);
  const page = /^\d+$/.test(values.page ?? '5000') ? Number(values.page ?? 5000) : NaN;
  if (!(page >= 1 && page <= MAX_PAGE)) throw wrong(`--page must be an integer from 1 to ${MAX_PAGE}`);
  let url: URL;
  try {
    url = new URL(values.url ?? 'http://127.0.0.1:4000');
  } catch {
    throw wrong(`--url is not a URL: "${values.url}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw wrong('--url must be http:// or https://');
  const token = (values.token ?? env.CUSTOS_TOKEN ?? '').trim();
  if (!token) throw wrong('no token: set CUSTOS_TOKEN (or pass --token)');
  if (values.grant !== undefined && !/^[0-9a-f-]{36}$/i.test(values.grant)) throw wrong('--grant must be an export request id (a UUID)');
  return { dataset: values.dataset, grant: values.grant, out: values.out, format, url, token, page, force: values.force ?? false };
}

/** Progress on stderr: one line rewritten in place on a terminal, else a line every ten pages. */
function progressReporter(tty: boolean) {
  let pages = 0;
  return (rows: number, total: number | undefined, rate: number, last: boolean) => {
    pages++;
    const of = total !== undefined ? `/${total} rows (${total > 0 ? Math.min(100, Math.floor((rows / total) * 100)) : 100}%)` : ' rows';
    const line = `export: ${rows}${of}, ${Math.round(rate)} rows/s`;
    if (tty) process.stderr.write(`\r\x1b[K${line}${last ? '\n' : ''}`);
    else if (pages % 10 === 0 || last) process.stderr.write(`${line}\n`);
  };
}

interface Run {
  args: Args;
  grant: Grant;
  /** Rows of the source, when custos tells. */
  sourceTotal: number | undefined;
  connection: Connection;
  /** Aborted by the first Ctrl-C: stop before the next page (or retry). */
  stop: AbortSignal;
}

/** Rows FILE will hold at the end: no more than the grant still allows, nor than the dataset has. */
function expected(run: Run, rows: number, remaining: number | undefined): number | undefined {
  const left = [remaining, run.sourceTotal === undefined ? undefined : Math.max(0, run.sourceTotal - rows)].filter((n): n is number => n !== undefined);
  return left.length > 0 ? rows + Math.min(...left) : undefined;
}

/**
 * custos ends a page at the grant's cap without a cursor, as it does at the
 * end of the data: a last page that leaves the grant empty while the source
 * has more rows is the cap, not the end.
 */
function cappedShort(run: Run, rowsAfter: number, page: Page, remaining: number | undefined): boolean {
  return page.next === null && remaining === 0 && run.sourceTotal !== undefined && rowsAfter < run.sourceTotal;
}

/** Pages the grant into FILE until custos says it is complete; returns what a summary needs. */
async function pull(run: Run): Promise<{ rows: number; bytes: number; thisRun: number; seconds: number }> {
  const { args, grant } = run;
  const file = await ExportFile.open({ path: args.out, grant: grant.id, format: args.format, force: args.force }).catch((e: unknown) => {
    throw e instanceof OutputInUse ? new Stop(e.message, 2) : e;
  });
  const { state } = file;
  const started = performance.now();
  const startRows = state.rows;
  const progress = progressReporter(process.stderr.isTTY);
  if (file.resumed) process.stderr.write(`export: resuming after ${state.rows} rows\n`);
  let remaining: number | undefined = grant.rowLimit - grant.rowsExported;
  try {
    while (!state.done) {
      if (run.stop.aborted) throw new Interrupted('stopped', 130);
      const query = { grant: grant.id, format: args.format, limit: args.page, cursor: state.cursor };
      const page = await withRetry(() => fetchPage(run.connection, query), run.stop, (reason) => new Interrupted(`interrupted (${reason})`, 1));
      if (page.rows === 0 && page.next !== null && page.next === state.cursor) throw new Stop('custos sent an empty page that does not advance', 1);
      remaining = page.remaining ?? (remaining === undefined ? undefined : remaining - page.rows);
      if (cappedShort(run, state.rows + page.rows, page, remaining)) {
        await file.appendLast(page);
        throw new Refusal(`the grant's row cap ran out before the export was complete (${run.sourceTotal} rows)`, 'FORBIDDEN', 'GRANT_EXHAUSTED');
      }
      await file.append(page);
      const seconds = (performance.now() - started) / 1000;
      progress(state.rows, state.done ? state.rows : expected(run, state.rows, remaining), seconds > 0 ? (state.rows - startRows) / seconds : 0, state.done);
    }
  } catch (error) {
    throw await stopped(file, error);
  }
  await file.finish();
  return { rows: state.rows, bytes: state.bytes, thisRun: state.rows - startRows, seconds: (performance.now() - started) / 1000 };
}

/** Closes FILE after a stop, and says what it now holds and what to do next. */
async function stopped(file: ExportFile, error: unknown): Promise<unknown> {
  const rows = file.state.rows;
  if (error instanceof Interrupted) {
    await file.close();
    return new Stop(`${error.message} after ${rows} rows; run the same command again to resume`, error.exitCode);
  }
  if (!(error instanceof Refusal)) {
    await file.close();
    return error;
  }
  if (rows === 0 && !file.resumed) {
    // Refused before anything was written: leave no empty FILE behind.
    await file.discard();
    return error;
  }
  if (error.reason === 'DATASET_CHANGED') {
    // The rest would come from another release plan: this FILE cannot be continued.
    await file.finish();
    return new Stop(`${error.message}; ${file.path} holds ${rows} rows of the earlier release: run again with --force to start over`, 3);
  }
  await file.close();
  return new Stop(`${error.message}; ${file.path} holds ${rows} rows`, 3);
}

async function main(argv: string[]): Promise<number> {
  const args = parse(argv, process.env);
  // First Ctrl-C: finish the page under way, then stop. Second: abort it (nothing half-written is kept either way).
  const stop = new AbortController();
  const abort = new AbortController();
  process.on('SIGINT', () => {
    if (stop.signal.aborted) return abort.abort();
    process.stderr.write('\nexport: stopping after the page under way (Ctrl-C again to stop at once)\n');
    stop.abort();
  });
  const connection: Connection = { url: args.url, token: args.token, signal: abort.signal };
  const client = graphqlClient(connection);
  const unreachable = (reason: string) => new Stop(`cannot reach ${args.url.origin} (${reason})`, 1);
  const grant = await withRetry(() => findGrant(client, args), stop.signal, unreachable);
  const total = await sourceTotal(client, grant);
  if (stop.signal.aborted) throw new Stop('stopped before the export began', 130);
  const done = await pull({ args, grant, sourceTotal: total, connection, stop: stop.signal });
  const rate = done.seconds > 0 ? Math.round(done.thisRun / done.seconds) : 0;
  const resumed = done.thisRun !== done.rows ? ` (${done.thisRun} in this run)` : '';
  console.log(`exported ${done.rows} rows${resumed} of grant ${grant.id} to ${args.out}: ${done.bytes} bytes in ${done.seconds.toFixed(1)} s, ${rate} rows/s`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof Stop) {
      console.error(`export: ${error.message}`);
      if (error instanceof UsageError) console.error(usage);
      process.exit(error.exitCode);
    }
    // Unexpected (a full disk, a permission): one line, no stack.
    const e = error as NodeJS.ErrnoException;
    console.error(`export: failed: ${e?.message?.split('\n')[0] ?? String(error)}${e?.code && !e.message?.includes(e.code) ? ` (${e.code})` : ''}`);
    process.exit(1);
  },
);
