import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { certificateBundle, databaseTls, errorCode, serverTlsIssues, type Issue } from './config-tls.js';

/** Development-only secrets: refused when NODE_ENV=production. */
export const DEV_JWT_SECRET = 'custos-development-secret-do-not-use-in-production';
const DEV_KEK = 'dev:' + Buffer.alloc(32, 7).toString('base64');
const DEV_INDEX_KEY = Buffer.alloc(32, 9).toString('base64');
const DEV_PSEUDONYM_KEY = Buffer.alloc(32, 11).toString('base64');

const base64Key = z
  .string()
  .refine((v) => Buffer.from(v, 'base64').length === 32, 'must be 32 bytes, base64-encoded');

const keyring = z
  .string()
  .transform((v, ctx) => {
    const keys = new Map<string, Buffer>();
    for (const part of v.split(',').map((p) => p.trim()).filter(Boolean)) {
      const [id, material] = part.split(':');
      const key = material ? Buffer.from(material, 'base64') : undefined;
      if (!id || !/^[A-Za-z0-9_.-]+$/.test(id) || !key || key.length !== 32) {
        ctx.addIssue({ code: 'custom', message: 'entries must be "<id>:<32 bytes base64>", comma-separated' });
        return z.NEVER;
      }
      keys.set(id, key);
    }
    if (keys.size === 0) {
      ctx.addIssue({ code: 'custom', message: 'needs at least one key' });
      return z.NEVER;
    }
    return keys;
  });

/** A file read once at start. Errors name its path and the reason, never its content. */
const fileContent = z.string().transform((path, ctx) => {
  try {
    return readFileSync(path);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `cannot read ${path} (${errorCode(e)})` });
    return z.NEVER;
  }
});

const schema = z
  .object({
    NODE_ENV: z.enum(['development', 'test', 'production']).default('development'),
    PORT: z.coerce.number().int().min(0).max(65535).default(4000),
    HOST: z.string().default('0.0.0.0'),
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .optional(),
    DATA_DIR: z.string().default('./.data'),
    DB_POOL_MAX: z.coerce.number().int().min(1).max(200).default(10),
    DB_ACQUIRE_TIMEOUT_MS: z.coerce.number().int().min(10).max(300_000).optional(),
    DATABASE_CA_FILE: fileContent.optional(),
    TLS_CERT_FILE: fileContent.optional(),
    TLS_KEY_FILE: fileContent.optional(),
    JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
    JWKS_URL: z.url().optional(),
    JWT_ISSUER: z.string().default('custos'),
    JWT_AUDIENCE: z.string().default('custos'),
    PRINCIPAL_CACHE_MS: z.coerce.number().int().min(0).max(10_000).default(3_000),
    POLICY_DIR: z.string().default('./policies'),
    DATASET_DIR: z.string().optional(),
    KEYRING: keyring.optional(),
    KEK_ACTIVE_ID: z.string().optional(),
    BLIND_INDEX_KEY: base64Key.optional(),
    PSEUDONYM_KEY: base64Key.optional(),
    CURSOR_SECRET: z.string().min(32).optional(),
    SEED_DEMO: z.enum(['auto', 'never']).default('auto'),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    MAX_PAGE_SIZE: z.coerce.number().int().min(1).max(1000).default(100),
    AUDIT_MODE: z.enum(['strict', 'off']).default('strict'),
    REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(15_000),
    STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(100).max(300_000).default(10_000),
    SHUTDOWN_DELAY_MS: z.coerce.number().int().min(0).max(60_000).default(2_000),
    TRACING: z.enum(['on', 'off']).default('on'),
    OTEL_EXPORTER_OTLP_ENDPOINT: z.url().optional(),
    OTEL_SERVICE_NAME: z.string().default('custos'),
  })
  .superRefine((env, ctx) => {
    for (const { key, message } of [...serverTlsIssues(env), ...databaseIssues(env)]) ctx.addIssue({ code: 'custom', path: [key], message });
    if (env.NODE_ENV !== 'production') return;
    if (!env.JWKS_URL && !env.JWT_SECRET) {
      ctx.addIssue({ code: 'custom', path: ['JWKS_URL'], message: 'production needs JWKS_URL or JWT_SECRET' });
    }
    // Benchmark-only switches: production can never run without audit or tracing.
    if (env.AUDIT_MODE === 'off') ctx.addIssue({ code: 'custom', path: ['AUDIT_MODE'], message: 'off is refused in production' });
    if (env.TRACING === 'off') ctx.addIssue({ code: 'custom', path: ['TRACING'], message: 'off is refused in production' });
    for (const key of ['KEYRING', 'BLIND_INDEX_KEY', 'CURSOR_SECRET', 'PSEUDONYM_KEY'] as const) {
      if (!env[key]) ctx.addIssue({ code: 'custom', path: [key], message: 'required in production' });
    }
  });

type Env = z.infer<typeof schema>;

function databaseIssues(env: Env): Issue[] {
  const issues: Issue[] = [];
  if (env.DB_ACQUIRE_TIMEOUT_MS !== undefined && env.DB_ACQUIRE_TIMEOUT_MS >= env.REQUEST_TIMEOUT_MS) {
    issues.push({ key: 'DB_ACQUIRE_TIMEOUT_MS', message: `must be below REQUEST_TIMEOUT_MS (${env.REQUEST_TIMEOUT_MS})` });
  }
  if (env.DATABASE_CA_FILE && !certificateBundle(env.DATABASE_CA_FILE)) issues.push({ key: 'DATABASE_CA_FILE', message: 'not a PEM certificate bundle' });
  if (!env.DATABASE_URL) {
    if (env.DATABASE_CA_FILE) issues.push({ key: 'DATABASE_CA_FILE', message: 'only used with DATABASE_URL' });
    return issues;
  }
  const tls = databaseTls(env.DATABASE_URL, env.DATABASE_CA_FILE);
  return 'issue' in tls ? [...issues, tls.issue] : issues;
}

export type Config = ReturnType<typeof finish>;

function finish(env: Env) {
  const keyringMap = env.KEYRING ?? keyring.parse(DEV_KEK);
  const activeKekId = env.KEK_ACTIVE_ID ?? [...keyringMap.keys()].at(-1)!;
  return {
    env: env.NODE_ENV,
    production: env.NODE_ENV === 'production',
    port: env.PORT,
    host: env.HOST,
    database: env.DATABASE_URL
      ? ({
          kind: 'postgres',
          url: env.DATABASE_URL,
          poolMax: env.DB_POOL_MAX,
          statementTimeoutMs: env.STATEMENT_TIMEOUT_MS,
          // Unset: 2 s, or half the request deadline when that is shorter, so a full pool answers before the deadline does.
          acquireTimeoutMs: env.DB_ACQUIRE_TIMEOUT_MS ?? Math.min(2_000, Math.floor(env.REQUEST_TIMEOUT_MS / 2)),
          tls: settledTls(databaseTls(env.DATABASE_URL, env.DATABASE_CA_FILE)),
        } as const)
      : ({ kind: 'pglite', dataDir: env.DATA_DIR } as const),
    /** HTTPS when both TLS_CERT_FILE and TLS_KEY_FILE are set (checked as a pair at load). */
    tls: env.TLS_CERT_FILE && env.TLS_KEY_FILE ? { cert: env.TLS_CERT_FILE, key: env.TLS_KEY_FILE } : undefined,
    auth: {
      secret: env.JWT_SECRET ?? (env.JWKS_URL ? undefined : DEV_JWT_SECRET),
      jwksUrl: env.JWKS_URL,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      principalCacheMs: env.PRINCIPAL_CACHE_MS,
    },
    policyDir: env.POLICY_DIR,
    /** policies/datasets/ unless set apart (Kubernetes mounts it as a second ConfigMap). */
    datasetDir: env.DATASET_DIR ?? `${env.POLICY_DIR.replace(/\/+$/, '')}/datasets`,
    /** Shaped as the crypto layer's CryptoKeys, so callers pass it as is. */
    keys: {
      keyring: { keys: keyringMap, activeKekId },
      blindIndexKey: Buffer.from(env.BLIND_INDEX_KEY ?? DEV_INDEX_KEY, 'base64'),
    },
    cursorSecret: env.CURSOR_SECRET ?? DEV_JWT_SECRET,
    /** HMAC key of the analytics datasets' pseudonymous ids (policies/datasets/). */
    pseudonymKey: Buffer.from(env.PSEUDONYM_KEY ?? DEV_PSEUDONYM_KEY, 'base64'),
    seedDemo: env.SEED_DEMO,
    logLevel: env.LOG_LEVEL,
    maxPageSize: env.MAX_PAGE_SIZE,
    auditMode: env.AUDIT_MODE,
    shutdownDelayMs: env.SHUTDOWN_DELAY_MS,
    requestTimeoutMs: env.REQUEST_TIMEOUT_MS,
    tracing: { enabled: env.TRACING === 'on', otlpEndpoint: env.OTEL_EXPORTER_OTLP_ENDPOINT, serviceName: env.OTEL_SERVICE_NAME },
  };
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** The schema's refinement already refused every issue; this keeps the type honest without a cast. */
function settledTls(result: ReturnType<typeof databaseTls>) {
  if ('issue' in result) throw new ConfigError(`invalid configuration:\n  ${result.issue.key}: ${result.issue.message}`);
  return result.tls;
}

/** Reads and validates the environment once; throws ConfigError naming every bad key. */
export function loadConfig(source: NodeJS.ProcessEnv = process.env): Config {
  // An empty variable means "unset" (a blank line in a Secret must not count as a key).
  const present = Object.fromEntries(Object.entries(source).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.') || '(env)'}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const config = finish(parsed.data);
  if (!config.keys.keyring.keys.has(config.keys.keyring.activeKekId)) {
    throw new ConfigError(`invalid configuration:\n  KEK_ACTIVE_ID: no key with that id in KEYRING`);
  }
  return config;
}
