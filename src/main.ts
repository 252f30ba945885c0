import 'reflect-metadata';
import { PolicyBundleError } from './authz/policy/bundle.js';
import { start, StartupError } from './boot.js';
import { ConfigError, loadConfig } from './config.js';

/** Process entry: refuses to start on bad config or policies, drains on SIGTERM. */
async function main(): Promise<void> {
  const config = loadConfig();
  const running = await start(config);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    running.logger.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

main().catch((e: unknown) => {
  const known = e instanceof ConfigError || e instanceof PolicyBundleError || e instanceof StartupError;
  process.stderr.write(`custos: ${known ? (e).message : `failed to start (${(e as Error)?.name ?? 'error'}: ${(e as Error)?.message ?? ''})`}\n`);
  process.exit(1);
});
