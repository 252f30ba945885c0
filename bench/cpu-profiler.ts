/**
 * Preloaded into the full server with `--import` when the benchmark runs with
 * --profile: SIGUSR2 starts the V8 CPU profiler, the next SIGUSR2 stops it and
 * writes a .cpuprofile into BENCH_PROFILE_DIR. This profiles exactly the
 * measured window, and needs no clean exit of the server (node --cpu-prof does).
 * Between two profiles the profiler is disabled, so nothing of it stays in memory.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { Session, type Profiler } from 'node:inspector';
import { join } from 'node:path';

const dir = process.env.BENCH_PROFILE_DIR ?? '.';
const session = new Session();
session.connect();
let running = false;

process.on('SIGUSR2', () => {
  if (!running) {
    running = true;
    session.post('Profiler.enable', () => session.post('Profiler.start'));
    return;
  }
  running = false;
  session.post('Profiler.stop', (err, result: Profiler.StopReturnType) => {
    // Disabling disposes of V8's profiler: one kept between profiles holds native memory that grows
    // (V8 issue 11051; google/pprof-nodejs creates a profiler per profile for that reason).
    session.post('Profiler.disable');
    if (err) return;
    // Written aside and renamed, so that a reader waiting for the .cpuprofile never reads half of it.
    const file = join(dir, `${process.env.BENCH_PROFILE_VARIANT ?? 'full'}-${process.pid}-${Date.now()}.cpuprofile`);
    writeFileSync(`${file}.partial`, JSON.stringify(result.profile));
    renameSync(`${file}.partial`, file);
  });
});
