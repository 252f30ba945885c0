import { execFileSync, spawnSync } from 'node:child_process';
import { appendFileSync, cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { imageNodeFlags } from '../bench/image.js';
import { parseDockerfile } from './helpers/dockerfile.js';
import { containers, named, ofKind, pods, selects, spec, type Spec } from './helpers/k8s-objects.js';
import { schemaProblems } from './helpers/k8s-schema.js';
import { kustomizeBuild, podSpecOf, type K8sObject } from './helpers/kustomize.js';

const variants = { base: 'k8s/base', dev: 'k8s/overlays/dev', prod: 'k8s/overlays/prod' } as const;
const rendered = Object.fromEntries(Object.entries(variants).map(([name, dir]) => [name, kustomizeBuild(dir)])) as Record<keyof typeof variants, K8sObject[]>;

const custosContainer = (objects: K8sObject[]) => podSpecOf(named(objects, 'Deployment', 'custos'))!.containers.find((c: Spec) => c.name === 'custos');
const configData = (objects: K8sObject[]) => named(objects, 'ConfigMap', 'custos-config').data as Record<string, string>;
const repoPolicyFiles = () => readdirSync('policies').filter((f) => /\.ya?ml$/.test(f) && !/\.test\.ya?ml$/.test(f)).sort();

describe.each(Object.keys(variants) as Array<keyof typeof variants>)('%s manifests', (variant) => {
  const objects = rendered[variant];

  it('every object validates against its Kubernetes schema, without unknown fields', () => {
    expect(objects.length).toBeGreaterThan(0);
    expect(objects.flatMap(schemaProblems)).toEqual([]);
  });

  it('the namespace enforces, audits and warns on the restricted Pod Security Standard', () => {
    const [namespace, ...others] = ofKind(objects, 'Namespace');
    expect(others).toEqual([]);
    for (const mode of ['enforce', 'audit', 'warn']) expect(namespace!.metadata.labels?.[`pod-security.kubernetes.io/${mode}`]).toBe('restricted');
    const elsewhere = objects.filter((o) => o.kind !== 'Namespace' && o.metadata.namespace !== namespace!.metadata.name);
    expect(elsewhere.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([]);
  });

  it('every container runs as a numeric non-root user', () => {
    for (const { where, pod, c } of containers(objects)) {
      expect(c.securityContext?.runAsNonRoot ?? pod.securityContext?.runAsNonRoot, where).toBe(true);
      const uid = c.securityContext?.runAsUser ?? pod.securityContext?.runAsUser;
      expect(Number.isInteger(uid) && uid > 0, `${where} runAsUser ${uid}`).toBe(true);
    }
  });

  it('every container has a read-only root filesystem', () => {
    for (const { where, c } of containers(objects)) expect(c.securityContext?.readOnlyRootFilesystem, where).toBe(true);
  });

  it('every container drops all capabilities and adds none', () => {
    for (const { where, c } of containers(objects)) {
      expect(c.securityContext?.capabilities?.drop, where).toEqual(['ALL']);
      expect(c.securityContext?.capabilities?.add, where).toBeUndefined();
    }
  });

  it('every container runs under the RuntimeDefault seccomp profile', () => {
    for (const { where, pod, c } of containers(objects)) {
      expect((c.securityContext?.seccompProfile ?? pod.securityContext?.seccompProfile)?.type, where).toBe('RuntimeDefault');
    }
  });

  it('no container may escalate privileges', () => {
    for (const { where, c } of containers(objects)) expect(c.securityContext?.allowPrivilegeEscalation, where).toBe(false);
  });

  it('no pod gets a service account token', () => {
    for (const { where, pod } of pods(objects)) expect(pod.automountServiceAccountToken, where).toBe(false);
    for (const account of ofKind(objects, 'ServiceAccount')) expect(account.automountServiceAccountToken, account.metadata.name).toBe(false);
  });

  it('every container requests and limits cpu and memory', () => {
    for (const { where, c } of containers(objects)) {
      for (const bound of ['requests', 'limits']) {
        expect(Object.keys(c.resources?.[bound] ?? {}).sort(), `${where} ${bound}`).toEqual(expect.arrayContaining(['cpu', 'memory']));
      }
    }
  });

  it('every long-running container has liveness and readiness probes', () => {
    const longRunning = containers(objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet'));
    expect(longRunning.length).toBeGreaterThan(0);
    for (const { where, c } of longRunning) {
      expect(c.livenessProbe, where).toBeDefined();
      expect(c.readinessProbe, where).toBeDefined();
    }
  });

  it('custos checks readiness at /readyz and liveness and startup at /healthz', () => {
    const c = custosContainer(objects);
    expect(c.readinessProbe.httpGet.path).toBe('/readyz');
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.startupProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).not.toBe(c.livenessProbe.httpGet.path);
  });

  it('custos sleeps before SIGTERM so endpoints drain, within its termination grace period', () => {
    const pod = podSpecOf(named(objects, 'Deployment', 'custos'))!;
    const preStop = custosContainer(objects).lifecycle?.preStop;
    const command: string[] = preStop?.exec?.command ?? [];
    const sleep = Number(preStop?.sleep?.seconds ?? (command[0] === 'sleep' ? command[1] : NaN));
    expect(sleep).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(sleep);
  });

  it('the autoscaler alone sets the custos replica count, never below two, scaling on CPU', () => {
    const hpa = spec(named(objects, 'HorizontalPodAutoscaler', 'custos'));
    expect(hpa.scaleTargetRef).toMatchObject({ kind: 'Deployment', name: 'custos' });
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.maxReplicas).toBeGreaterThan(hpa.minReplicas);
    expect(hpa.metrics).toContainEqual(expect.objectContaining({ type: 'Resource', resource: expect.objectContaining({ name: 'cpu' }) }));
    // A count in the Deployment would be re-applied by every `kubectl apply`, overriding the autoscaler.
    expect(spec(named(objects, 'Deployment', 'custos')).replicas).toBeUndefined();
  });

  it('a PodDisruptionBudget keeps custos pods available during voluntary disruptions', () => {
    const labels = spec(named(objects, 'Deployment', 'custos')).template.metadata.labels;
    const budgets = ofKind(objects, 'PodDisruptionBudget').filter((p) => selects(spec(p).selector, labels));
    expect(budgets).toHaveLength(1);
    const { minAvailable, maxUnavailable } = spec(budgets[0]!);
    expect(minAvailable === 1 || maxUnavailable === 1).toBe(true);
  });

  it('the Service sends port 4000 to the custos API pods only', () => {
    const service = spec(named(objects, 'Service', 'custos'));
    expect(service.ports).toEqual([expect.objectContaining({ port: 4000, targetPort: 'http' })]);
    const selected = pods(objects).filter(({ obj }) => selects({ matchLabels: service.selector }, spec(obj).template.metadata.labels));
    expect(selected.map((p) => p.where)).toEqual(['Deployment/custos']);
  });

  it('network traffic is denied by default, with explicit egress for DNS and PostgreSQL and ingress on 4000', () => {
    const policies = ofKind(objects, 'NetworkPolicy').map(spec);
    expect(policies).toContainEqual({ podSelector: {}, policyTypes: ['Ingress', 'Egress'] });
    const labels = spec(named(objects, 'Deployment', 'custos')).template.metadata.labels;
    const mine = policies.filter((p) => selects(p.podSelector, labels));
    const egress = mine.flatMap((p) => p.egress ?? []);
    const allows = (protocol: string, port: number) => egress.filter((r) => r.ports?.some((p: Spec) => p.protocol === protocol && p.port === port));
    for (const protocol of ['UDP', 'TCP']) {
      expect(allows(protocol, 53).some((r) => r.to?.some((peer: Spec) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name'] === 'kube-system'))).toBe(true);
    }
    expect(allows('TCP', 5432).length).toBeGreaterThan(0);
    const ingress = mine.flatMap((p) => p.ingress ?? []).filter((r) => r.ports?.some((p: Spec) => p.port === 4000));
    const sources = ingress.flatMap((r) => r.from ?? []).map((peer: Spec) => peer.namespaceSelector?.matchLabels?.['kubernetes.io/metadata.name']);
    expect(sources).toEqual(expect.arrayContaining(['frontends', 'analytics']));
  });

  it('secret values are referenced from Secrets, never written into workloads or ConfigMaps', () => {
    const secretish = /SECRET|PASSWORD|KEYRING|_KEY$|TOKEN|DATABASE_URL/;
    for (const { where, c } of containers(objects)) {
      for (const env of c.env ?? []) {
        if (secretish.test(env.name)) expect(env.valueFrom?.secretKeyRef?.name, `${where} ${env.name}`).toBeTruthy();
        expect(env.value ?? '', `${where} ${env.name}`).not.toMatch(/:\/\/[^/@\s]+:[^/@\s]+@/);
      }
    }
    for (const map of ofKind(objects, 'ConfigMap')) expect(Object.keys((map.data as object | undefined) ?? {}).filter((k) => secretish.test(k))).toEqual([]);
  });

  it('workloads name only ConfigMaps that the build generates, with their hash suffix', () => {
    const maps = new Set(ofKind(objects, 'ConfigMap').map((m) => m.metadata.name));
    for (const { where, pod, c } of containers(objects)) {
      const refs = [...(c.envFrom ?? []).map((e: Spec) => e.configMapRef?.name), ...(pod.volumes ?? []).map((v: Spec) => v.configMap?.name)];
      for (const ref of refs.filter(Boolean)) expect(maps.has(ref), `${where} → ConfigMap ${ref}`).toBe(true);
    }
  });

  it("the policy ConfigMap holds exactly the repository's policies/*.yaml, mounted read-only at POLICY_DIR", () => {
    const map = named(objects, 'ConfigMap', 'custos-policies');
    const data = map.data as Record<string, string>;
    const refresh = 'run `npm run k8s:sync-policies` (and list a new role file in k8s/base/kustomization.yaml)';
    expect(Object.keys(data).sort(), refresh).toEqual(repoPolicyFiles());
    for (const file of repoPolicyFiles()) expect(data[file], `${file}: ${refresh}`).toBe(readFileSync(`policies/${file}`, 'utf8'));
    const pod = podSpecOf(named(objects, 'Deployment', 'custos'))!;
    const volume = pod.volumes.find((v: Spec) => v.configMap?.name === map.metadata.name);
    const mount = custosContainer(objects).volumeMounts.find((m: Spec) => m.name === volume?.name);
    expect(mount).toMatchObject({ mountPath: configData(objects).POLICY_DIR, readOnly: true });
  });

  it("the datasets ConfigMap holds exactly the repository's policies/datasets/*.yaml, mounted read-only at DATASET_DIR", () => {
    const map = named(objects, 'ConfigMap', 'custos-datasets');
    const data = map.data as Record<string, string>;
    const files = readdirSync('policies/datasets').filter((f) => /\.ya?ml$/.test(f) && !/\.test\.ya?ml$/.test(f)).sort();
    const refresh = 'run `npm run k8s:sync-policies` (and list a new dataset file in k8s/base/kustomization.yaml)';
    expect(Object.keys(data).sort(), refresh).toEqual(files);
    for (const file of files) expect(data[file], `${file}: ${refresh}`).toBe(readFileSync(`policies/datasets/${file}`, 'utf8'));
    const pod = podSpecOf(named(objects, 'Deployment', 'custos'))!;
    const volume = pod.volumes.find((v: Spec) => v.configMap?.name === map.metadata.name);
    const mount = custosContainer(objects).volumeMounts.find((m: Spec) => m.name === volume?.name);
    expect(mount).toMatchObject({ mountPath: configData(objects).DATASET_DIR, readOnly: true });
  });

  it('the migration Job runs the migrate CLI with the app image, bounded retries and cleanup', () => {
    const job = named(objects, 'Job', 'custos-migrate');
    const [c] = podSpecOf(job)!.containers;
    expect(c.command).toEqual(['node', 'dist/cli/migrate.js']);
    expect(c.image).toBe(custosContainer(objects).image);
    expect(spec(job).backoffLimit).toBeGreaterThan(0);
    expect(spec(job).ttlSecondsAfterFinished).toBeGreaterThan(0);
  });
});

describe('dev overlay', () => {
  const objects = rendered.dev;

  it('exports traces through a collector with memory_limiter and batch, and never samples', () => {
    const config = parse((named(objects, 'ConfigMap', 'otel-collector-config').data as Record<string, string>)['config.yaml']!);
    expect(Object.keys(config.processors)).toEqual(expect.arrayContaining(['memory_limiter', 'batch']));
    expect(config.service.pipelines.traces.processors).toEqual(['memory_limiter', 'batch']);
    expect(JSON.stringify(config)).not.toMatch(/sampl/i);
    expect(configData(objects).OTEL_EXPORTER_OTLP_ENDPOINT).toBe('http://otel-collector:4318');
    expect(config.exporters['otlp/jaeger'].endpoint).toBe('jaeger:4317');
  });

  it('runs PostgreSQL in-cluster as a StatefulSet with a volume claim, as uid 999', () => {
    const postgres = named(objects, 'StatefulSet', 'postgres');
    expect(spec(postgres).volumeClaimTemplates).toHaveLength(1);
    expect(podSpecOf(postgres)!.securityContext).toMatchObject({ runAsUser: 999, fsGroup: 999 });
    expect(named(objects, 'Service', 'postgres')).toBeDefined();
  });

  it('generates only dev-only secrets that carry no key material', () => {
    for (const secret of ofKind(objects, 'Secret')) {
      for (const [key, value] of Object.entries(secret.data as Record<string, string>)) {
        const plain = Buffer.from(value, 'base64').toString('utf8');
        expect(plain === '' || plain.includes('dev-only'), `${secret.metadata.name} ${key}`).toBe(true);
      }
    }
  });

  it('asks for less than the base and caps the autoscaler lower', () => {
    const cpu = (objects: K8sObject[]) => parseInt(custosContainer(objects).resources.requests.cpu, 10);
    expect(cpu(objects)).toBeLessThan(cpu(rendered.base));
    expect(spec(named(objects, 'HorizontalPodAutoscaler', 'custos')).maxReplicas).toBeLessThan(spec(named(rendered.base, 'HorizontalPodAutoscaler', 'custos')).maxReplicas);
  });
});

describe('prod overlay', () => {
  const objects = rendered.prod;

  it('runs in production mode against an external PostgreSQL whose URL comes from an existing Secret', () => {
    expect(configData(objects)).toMatchObject({ NODE_ENV: 'production', SEED_DEMO: 'never', AUDIT_MODE: 'strict' });
    const env = custosContainer(objects).env.find((e: Spec) => e.name === 'DATABASE_URL');
    expect(env.valueFrom.secretKeyRef).toEqual({ name: 'custos-secrets', key: 'DATABASE_URL' });
    expect(ofKind(objects, 'Secret')).toEqual([]);
    expect(ofKind(objects, 'StatefulSet')).toEqual([]);
  });

  it('sends traces to an external collector and scales out further than the base', () => {
    expect(configData(objects).OTEL_EXPORTER_OTLP_ENDPOINT).toMatch(/^https?:\/\/[^/]+\.svc\.cluster\.local:4318$/);
    const hpa = spec(named(objects, 'HorizontalPodAutoscaler', 'custos'));
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(3);
    expect(hpa.maxReplicas).toBeGreaterThan(spec(named(rendered.base, 'HorizontalPodAutoscaler', 'custos')).maxReplicas);
  });
});

describe(kustomizeBuild.name, () => {
  const kubectl = (() => {
    try {
      execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  it('gives the policy ConfigMap a new name when a policy changes, and points the Deployment at it', () => {
    const copy = mkdtempSync(join(tmpdir(), 'custos-k8s-'));
    try {
      cpSync('k8s', copy, { recursive: true });
      appendFileSync(join(copy, 'base/policies/admin.yaml'), '# changed\n');
      const before = named(rendered.base, 'ConfigMap', 'custos-policies').metadata.name;
      const after = kustomizeBuild(join(copy, 'base'));
      const renamed = named(after, 'ConfigMap', 'custos-policies').metadata.name;
      expect(renamed).not.toBe(before);
      expect(podSpecOf(named(after, 'Deployment', 'custos'))!.volumes).toContainEqual({ name: 'policies', configMap: { name: renamed } });
    } finally {
      rmSync(copy, { recursive: true, force: true });
    }
  });

  it.skipIf(!kubectl)('renders what `kubectl kustomize` renders, hash suffixes included', () => {
    for (const [variant, dir] of Object.entries(variants)) {
      const theirs = parseAllDocuments(execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' })).map((d) => d.toJS() as K8sObject);
      const byKey = (list: K8sObject[]) => Object.fromEntries(list.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
      expect(byKey(rendered[variant as keyof typeof variants]), variant).toEqual(byKey(theirs));
    }
  });
});

describe('Dockerfile', () => {
  const stages = parseDockerfile(readFileSync('Dockerfile', 'utf8'));
  const runtime = stages.at(-1)!;
  const args = (keyword: string) => runtime.instructions.filter((i) => i.keyword === keyword).map((i) => i.args);

  it('builds in one stage and runs on Node 22 slim in another', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(runtime.from).toMatch(/^node:22(\.\d+)*-(bookworm-)?slim/);
    expect(stages[0]!.instructions.some((i) => i.keyword === 'RUN' && i.args.includes('npm run build'))).toBe(true);
  });

  it('installs only production dependencies in the runtime stage', () => {
    expect(args('RUN').filter((a) => a.includes('npm ci'))).toEqual([expect.stringContaining('--omit=dev')]);
    expect(args('COPY')).toEqual(expect.arrayContaining([expect.stringMatching(/--from=build \/app\/dist/), expect.stringMatching(/^drizzle /), expect.stringMatching(/^policies /)]));
  });

  it('ships the patched dependencies: the build stage installs with patches/ present, the runtime stage copies each patched package from it', () => {
    const build = stages[0]!;
    const copies = build.instructions.filter((i) => i.keyword === 'COPY').map((i) => i.args);
    const install = build.instructions.findIndex((i) => i.keyword === 'RUN' && i.args.includes('npm ci'));
    expect(build.instructions.findIndex((i) => i.keyword === 'COPY' && /^patches /.test(i.args))).toBeLessThan(install);
    expect(build.instructions[install]!.args).not.toContain('--ignore-scripts');
    expect(copies).toContain('patches ./patches');
    const patched = readdirSync('patches').map((f) => /^(.+)\+[^+]+\.patch$/.exec(f)![1]!.replace('+', '/'));
    expect(patched.length).toBeGreaterThan(0);
    for (const name of patched) expect(args('COPY')).toContain(`--from=build /app/node_modules/${name} ./node_modules/${name}`);
    expect(readFileSync('.dockerignore', 'utf8')).toMatch(/^!patches\/$/m);
  });

  it('runs as a numeric non-root user', () => {
    const user = args('USER').at(-1) ?? '';
    expect(user).toMatch(/^\d+(:\d+)?$/);
    expect(Number(user.split(':')[0])).toBeGreaterThan(0);
  });

  it('checks /healthz with node (slim has no curl), exposes 4000 and starts dist/main.js', () => {
    expect(args('HEALTHCHECK').join()).toMatch(/CMD \["node".*\/healthz/);
    expect(args('HEALTHCHECK').join()).not.toMatch(/curl|wget/);
    expect(args('EXPOSE')).toEqual(['4000']);
    expect(JSON.parse(args('CMD').at(-1)!)).toEqual(['node', '--heap-growing-percent=100', 'dist/main.js']);
  });

  it('starts node with flags this Node takes (an unknown one would stop the container at once)', () => {
    const flags = imageNodeFlags(readFileSync('Dockerfile', 'utf8'));
    expect(flags.length).toBeGreaterThan(0);
    const run = spawnSync(process.execPath, [...flags, '-e', 'process.exit(0)'], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toBe('');
    // The same check fails for a flag node does not know, so it can tell.
    expect(spawnSync(process.execPath, ['--heap-growing-percentage=100', '-e', 'process.exit(0)'], { encoding: 'utf8' }).status).not.toBe(0);
  });
});
