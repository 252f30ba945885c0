/**
 * Preloaded (`--import`) into the *off* server only. The config refuses
 * AUDIT_MODE=off and TRACING=off under NODE_ENV=production, so *off* cannot run
 * in production mode; but graphql-js chooses its production code path (no
 * cross-realm instanceOf checks) from NODE_ENV when it is first loaded, and
 * *full* runs with NODE_ENV=production. Loading graphql-js here under
 * NODE_ENV=production, then restoring the variable before custos reads its
 * config, gives *off* the same graphql-js as *full*: full/off keeps measuring
 * enforcement, audit and tracing, not the library's development checks.
 */
const mode = process.env.NODE_ENV;
process.env.NODE_ENV = 'production';
try {
  await import('graphql');
} finally {
  if (mode === undefined) delete process.env.NODE_ENV;
  else process.env.NODE_ENV = mode;
}
