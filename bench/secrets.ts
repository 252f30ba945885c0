/**
 * Throwaway production secrets of a benchmark dataset. custos runs in the
 * benchmark as deployed (NODE_ENV=production), which refuses the development
 * keys, so each dataset is seeded with its own random key-encryption key and
 * blind-index key. They are kept beside the checkout in bench/.tmp/ (ignored
 * by git, mode 0600) so the dataset can be reused; a dataset whose keys are
 * lost is seeded again. Nothing here is ever committed.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from './servers.js';

export interface BenchSecrets {
  /** KEYRING (`id:base64`) and its one id, which the seed stamps on every wrapped data key. */
  keyring: string;
  kekId: string;
  blindIndexKey: string;
}

const dir = join(repoRoot, 'bench', '.tmp');
const fileOf = (database: string) => join(dir, `secrets-${database}.json`);

/** The secrets the dataset was seeded with, or undefined when this checkout never seeded it. */
export function storedSecrets(database: string): BenchSecrets | undefined {
  const file = fileOf(database);
  if (!existsSync(file)) return undefined;
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<BenchSecrets>;
  if (typeof parsed.keyring !== 'string' || typeof parsed.kekId !== 'string' || typeof parsed.blindIndexKey !== 'string') return undefined;
  return { keyring: parsed.keyring, kekId: parsed.kekId, blindIndexKey: parsed.blindIndexKey };
}

/** New random secrets for a dataset about to be (re)seeded, written before the seed starts. */
export function freshSecrets(database: string): BenchSecrets {
  const kekId = `bench-${randomBytes(4).toString('hex')}`;
  const secrets = { keyring: `${kekId}:${randomBytes(32).toString('base64')}`, kekId, blindIndexKey: randomBytes(32).toString('base64') };
  mkdirSync(dir, { recursive: true });
  writeFileSync(fileOf(database), `${JSON.stringify(secrets)}\n`, { mode: 0o600 });
  chmodSync(fileOf(database), 0o600);
  return secrets;
}

/** The environment that hands the secrets to a server or to the seed. */
export function secretsEnv(secrets: BenchSecrets): Record<string, string> {
  return { KEYRING: secrets.keyring, KEK_ACTIVE_ID: secrets.kekId, BLIND_INDEX_KEY: secrets.blindIndexKey };
}
