# syntax=docker/dockerfile:1
# custos container image.
#   docker build -t custos:dev .
#   docker run --rm -p 4000:4000 --read-only --tmpfs /tmp -e NODE_ENV=development custos:dev
# Two stages: the build stage has the dev dependencies (TypeScript) and emits
# dist/; the runtime stage installs production dependencies only, so neither
# the compiler nor the test tooling ships.

# Node 22 LTS on Debian bookworm, slim: no compiler, no curl. Pin by digest in
# your registry mirror if your supply-chain policy asks for it.
ARG NODE_IMAGE=node:22-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Lockfile first: the dependency layer is reused until package*.json change.
# npm ci runs the postinstall, which applies patches/ (patch-package).
COPY package.json package-lock.json ./
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script at run time, and
# none should run while the image is built.
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && npm cache clean --force \
 && rm -rf /root/.npm
# No script ran above, so no patch either: the patched packages come from the
# build stage (patches/: postgres.js's pool queue kept a slot per query;
# graphql-js built its result objects in V8's slow dictionary mode).
COPY --from=build /app/node_modules/postgres ./node_modules/postgres
COPY --from=build /app/node_modules/graphql ./node_modules/graphql
# Production by default: the app then refuses to start without real secrets
# (KEYRING, BLIND_INDEX_KEY, CURSOR_SECRET, PSEUDONYM_KEY, JWT_SECRET or JWKS_URL) instead of
# silently using its development keys. Development runs pass NODE_ENV=development.
# DATA_DIR is only used when DATABASE_URL is unset (embedded PGlite): /tmp is
# the one writable path under a read-only root filesystem, so that data is
# throwaway. The numeric user below has no passwd entry, hence HOME=/tmp.
# --max-semi-space-size: a young generation of up to 32 MB instead of V8's
# 16 MB. Under load a request's spans, decisions and audit records live until
# their export and group commit; with the default they outlive two scavenges
# and are copied into the old generation. Measured (npm run bench -- --quick,
# S1): full's CPU per request 0.95 -> 0.80 ms, RSS under load about +50 MB; the
# young generation only grows to the limit under allocation pressure.
ENV NODE_ENV=production \
    NODE_OPTIONS=--max-semi-space-size=32 \
    PORT=4000 \
    HOST=0.0.0.0 \
    POLICY_DIR=/app/policies \
    DATA_DIR=/tmp/custos-data \
    HOME=/tmp
# Owned by root and not writable by the app user: the process cannot change
# its own code, migrations or policy bundle.
COPY --from=build /app/dist ./dist
# dist/db/client.js reads migrations from ../../drizzle, i.e. /app/drizzle.
COPY drizzle ./drizzle
# The default policy bundle. Kubernetes mounts the bundle from a ConfigMap
# instead and points POLICY_DIR at it (k8s/base/kustomization.yaml).
COPY policies ./policies

# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
EXPOSE 4000
# Liveness only (/healthz never touches the database). slim has no curl: use node's fetch.
# Liveness only, so over HTTPS (TLS_CERT_FILE set) the certificate is not checked: 127.0.0.1 is not its name.
HEALTHCHECK --interval=30s --timeout=3s --start-period=60s --retries=3 \
  CMD ["node", "-e", "const t=!!process.env.TLS_CERT_FILE;require(t?'node:https':'node:http').get({host:'127.0.0.1',port:process.env.PORT||4000,path:'/healthz',rejectUnauthorized:false},r=>process.exit(r.statusCode===200?0:1)).on('error',()=>process.exit(1))"]
# node is PID 1 and handles SIGTERM itself (readiness goes 503, then it drains).
# --heap-growing-percent=100: V8 lets the old generation double between major
# collections. It sizes that step by the heap's limit, and in the base
# Deployment's 512Mi (a 256 MB old generation) it allows only 1.3x: with ~30 MB
# live, a major GC every ~0.5 s under load. Measured side by side (npm run
# bench -- --quick --compare . --full-node-flag heap-growing-percent=100, see
# bench/README "Measured in session 21"): CPU per request -10 to -13 % at 16
# connections, -12 to -24 % at 64, RSS about +25 MB. The 256 MB limit still
# holds. A V8 flag: Node refuses it in NODE_OPTIONS, so it goes here.
CMD ["node", "--heap-growing-percent=100", "dist/main.js"]
