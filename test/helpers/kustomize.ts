import { createHash } from 'node:crypto';
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { basename, join, sep } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';

/**
 * An offline renderer for the subset of kustomize that k8s/ uses, so the
 * manifests can be tested without a kustomize binary. It refuses what it does
 * not implement (unknown kustomization keys, patch directives, list fields
 * without a known merge key) rather than render it differently from kustomize;
 * test/k8s.test.ts compares it with `kubectl kustomize` wherever kubectl exists.
 */

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

interface Item {
  obj: K8sObject;
  /** Set on generated ConfigMaps and Secrets: the name before the hash suffix. */
  generatedAs?: string;
}

interface Generator {
  name: string;
  behavior?: 'create' | 'merge' | 'replace';
  literals?: string[];
  files?: string[];
  type?: string;
}

interface Kustomization {
  namespace?: string;
  resources?: string[];
  labels?: Array<{ pairs: Record<string, string>; includeSelectors?: boolean; includeTemplates?: boolean }>;
  images?: Array<{ name: string; newName?: string; newTag?: string; digest?: string }>;
  patches?: Array<{ path: string }>;
  configMapGenerator?: Generator[];
  secretGenerator?: Generator[];
}

const SUPPORTED_KEYS = new Set(['apiVersion', 'kind', 'namespace', 'resources', 'labels', 'images', 'patches', 'configMapGenerator', 'secretGenerator']);
const GENERATOR_KEYS = new Set(['name', 'behavior', 'literals', 'files', 'type']);
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'CustomResourceDefinition', 'PersistentVolume', 'StorageClass', 'PriorityClass']);
/** Strategic-merge keys of the list fields our patches touch; any other list in a patch is refused. */
const MERGE_KEYS: Record<string, string> = { containers: 'name', initContainers: 'name', env: 'name', volumes: 'name', volumeMounts: 'mountPath' };

/** Renders the kustomization in `dir` like `kustomize build dir`. */
export function kustomizeBuild(dir: string): K8sObject[] {
  const items = build(dir);
  addHashSuffixes(items);
  return items.map((i) => i.obj);
}

function build(dir: string): Item[] {
  const root = realpathSync(dir);
  const k = readKustomization(root);
  const items: Item[] = [];
  for (const entry of k.resources ?? []) {
    const path = join(root, entry);
    if (statSync(path).isDirectory()) items.push(...build(path));
    else items.push(...readObjects(inRoot(root, entry)).map((obj) => ({ obj })));
  }
  for (const gen of k.configMapGenerator ?? []) generate(items, root, 'ConfigMap', gen);
  for (const gen of k.secretGenerator ?? []) generate(items, root, 'Secret', gen);
  if (k.namespace) setNamespace(items, k.namespace);
  for (const p of k.patches ?? []) patch(items, readObjects(inRoot(root, p.path)));
  for (const l of k.labels ?? []) {
    if (l.includeSelectors || l.includeTemplates) throw new Error('labels: only metadata labels are supported');
    for (const { obj } of items) obj.metadata.labels = { ...obj.metadata.labels, ...l.pairs };
  }
  for (const image of k.images ?? []) setImage(items, image);
  return items;
}

function readKustomization(root: string): Kustomization {
  const file = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'].map((n) => join(root, n)).find((f) => existsSync(f));
  if (!file) throw new Error(`no kustomization in ${root}`);
  const k = parse(readFileSync(file, 'utf8')) as Kustomization;
  const unsupported = Object.keys(k).filter((key) => !SUPPORTED_KEYS.has(key));
  if (unsupported.length > 0) throw new Error(`${file}: unsupported by this renderer: ${unsupported.join(', ')}`);
  if (k.patches?.some((p) => Object.keys(p).join() !== 'path')) throw new Error(`${file}: patches take a path only`);
  return k;
}

/** kustomize's load restriction: files (after symlinks) must be inside the kustomization root. */
function inRoot(root: string, relative: string): string {
  const real = realpathSync(join(root, relative));
  if (!real.startsWith(root + sep)) throw new Error(`security; file '${relative}' is not in or below '${root}'`);
  return real;
}

function readObjects(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, 'utf8'))
    .map((doc) => doc.toJS() as K8sObject | null)
    .filter((obj): obj is K8sObject => obj !== null);
}

function generate(items: Item[], root: string, kind: 'ConfigMap' | 'Secret', gen: Generator): void {
  const extra = Object.keys(gen).filter((key) => !GENERATOR_KEYS.has(key));
  if (extra.length > 0) throw new Error(`${kind} generator ${gen.name}: unsupported ${extra.join(', ')}`);
  const data: Record<string, string> = {};
  for (const literal of gen.literals ?? []) {
    const at = literal.indexOf('=');
    if (at <= 0) throw new Error(`literal "${literal}" is not KEY=VALUE`);
    data[literal.slice(0, at)] = literal.slice(at + 1).replace(/^(["'])(.*)\1$/, '$2');
  }
  for (const source of gen.files ?? []) {
    const at = source.indexOf('=');
    const [key, path] = at > 0 ? [source.slice(0, at), source.slice(at + 1)] : [basename(source), source];
    data[key] = readFileSync(inRoot(root, path), 'utf8');
  }
  if (kind === 'Secret') for (const key of Object.keys(data)) data[key] = base64Lines(data[key]!);
  const existing = items.find((i) => i.generatedAs === gen.name && i.obj.kind === kind);
  const behavior = gen.behavior ?? 'create';
  if ((behavior === 'create') !== (existing === undefined)) throw new Error(`${kind} ${gen.name}: behavior ${behavior} with${existing ? '' : 'out'} an existing one`);
  if (existing) {
    existing.obj.data = behavior === 'merge' ? { ...(existing.obj.data as object), ...data } : data;
    return;
  }
  const obj: K8sObject = { apiVersion: 'v1', kind, metadata: { name: gen.name }, data };
  if (kind === 'Secret') obj.type = gen.type ?? 'Opaque';
  items.push({ obj, generatedAs: gen.name });
}

/** kustomize's base64 for Secret data: lines of 70 characters, each ending in \n once there is more than one. */
function base64Lines(value: string): string {
  const encoded = Buffer.from(value, 'utf8').toString('base64');
  if (encoded.length < 70) return encoded;
  return (encoded.match(/.{1,70}/g) ?? []).map((line) => `${line}\n`).join('');
}

function setNamespace(items: Item[], namespace: string): void {
  for (const { obj } of items) {
    if (obj.kind === 'Namespace' && obj.metadata.name !== namespace) throw new Error(`renaming Namespace ${obj.metadata.name} is unsupported`);
    if (!CLUSTER_SCOPED.has(obj.kind)) obj.metadata.namespace = namespace;
  }
}

const group = (apiVersion: string) => (apiVersion.includes('/') ? apiVersion.split('/')[0] : '');

function patch(items: Item[], patches: K8sObject[]): void {
  for (const p of patches) {
    const targets = items.filter(
      ({ obj }) => obj.kind === p.kind && obj.metadata.name === p.metadata.name && group(obj.apiVersion) === group(p.apiVersion),
    );
    if (targets.length !== 1) throw new Error(`patch ${p.kind}/${p.metadata.name} matches ${targets.length} objects`);
    targets[0]!.obj = strategicMerge(targets[0]!.obj, p, '') as K8sObject;
  }
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Strategic merge for maps and keyed lists; `null` deletes a field. */
function strategicMerge(base: unknown, change: unknown, field: string): unknown {
  if (isMap(change)) {
    const out: Record<string, unknown> = isMap(base) ? { ...base } : {};
    for (const [key, value] of Object.entries(change)) {
      if (key.startsWith('$')) throw new Error(`patch directive ${key} is unsupported`);
      if (value === null) delete out[key];
      else out[key] = strategicMerge(out[key], value, key);
    }
    return out;
  }
  if (Array.isArray(change)) {
    const key = MERGE_KEYS[field];
    if (!key) throw new Error(`patching the list "${field}" is unsupported (no merge key known)`);
    const out = Array.isArray(base) ? [...(base as unknown[])] : [];
    for (const entry of change as Array<Record<string, unknown>>) {
      const at = out.findIndex((b) => isMap(b) && b[key] === entry[key]);
      if (at >= 0) out[at] = strategicMerge(out[at], entry, '');
      else out.push(entry);
    }
    return out;
  }
  return change;
}

/** The pod spec of a workload, or undefined for other kinds. */
export function podSpecOf(obj: K8sObject): Record<string, any> | undefined {
  const spec = obj.spec as Record<string, any> | undefined;
  switch (obj.kind) {
    case 'Deployment':
    case 'StatefulSet':
    case 'DaemonSet':
    case 'ReplicaSet':
    case 'Job':
      return spec?.template?.spec;
    case 'CronJob':
      return spec?.jobTemplate?.spec?.template?.spec;
    case 'Pod':
      return spec;
    default:
      return undefined;
  }
}

function containersOf(pod: Record<string, any>): Array<Record<string, any>> {
  return [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
}

function setImage(items: Item[], image: NonNullable<Kustomization['images']>[number]): void {
  for (const { obj } of items) {
    const pod = podSpecOf(obj);
    for (const container of pod ? containersOf(pod) : []) {
      const ref = String(container.image);
      const [beforeDigest, digest] = ref.split('@') as [string, string | undefined];
      const colon = beforeDigest.lastIndexOf(':');
      const hasTag = colon > beforeDigest.lastIndexOf('/');
      const name = hasTag ? beforeDigest.slice(0, colon) : beforeDigest;
      if (name !== image.name) continue;
      const suffix = image.digest ? `@${image.digest}` : image.newTag ? `:${image.newTag}` : digest ? `@${digest}` : hasTag ? beforeDigest.slice(colon) : '';
      container.image = `${image.newName ?? name}${suffix}`;
    }
  }
}

/** Appends the content hash to generated names and rewrites the pod specs' references to them. */
function addHashSuffixes(items: Item[]): void {
  const renamed = new Map<string, string>();
  for (const { obj, generatedAs } of items) {
    if (!generatedAs) continue;
    obj.metadata.name = `${generatedAs}-${contentHash(obj)}`;
    renamed.set(`${obj.kind}/${obj.metadata.namespace ?? ''}/${generatedAs}`, obj.metadata.name);
  }
  for (const { obj } of items) {
    const pod = podSpecOf(obj);
    if (!pod) continue;
    const rename = (kind: string, ref: Record<string, any> | undefined, field = 'name') => {
      const to = ref && renamed.get(`${kind}/${obj.metadata.namespace ?? ''}/${ref[field]}`);
      if (ref && to) ref[field] = to;
    };
    for (const volume of pod.volumes ?? []) {
      rename('ConfigMap', volume.configMap);
      rename('Secret', volume.secret, 'secretName');
      for (const source of volume.projected?.sources ?? []) {
        rename('ConfigMap', source.configMap);
        rename('Secret', source.secret);
      }
    }
    for (const container of containersOf(pod)) {
      for (const from of container.envFrom ?? []) {
        rename('ConfigMap', from.configMapRef);
        rename('Secret', from.secretRef);
      }
      for (const env of container.env ?? []) {
        rename('ConfigMap', env.valueFrom?.configMapKeyRef);
        rename('Secret', env.valueFrom?.secretKeyRef);
      }
    }
  }
}

/**
 * kustomize's hasher: sha-256 of Go's JSON encoding (sorted keys, <>& escaped)
 * of kind, data (and type for Secrets), first 10 hex digits with 0,1,3,a,e
 * swapped for letters so the suffix is never all digits. kustomize reads the
 * name through a path lookup that finds nothing, so "name" is always empty.
 */
function contentHash(obj: K8sObject): string {
  const encoded: Record<string, unknown> = { kind: obj.kind, name: '', data: obj.data ?? '' };
  if (obj.kind === 'Secret') encoded.type = obj.type ?? '';
  const json = goJson(encoded);
  const hex = createHash('sha256').update(json).digest('hex').slice(0, 10);
  return hex.replace(/[013ae]/g, (c) => ({ '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' })[c]!);
}

function goJson(value: unknown): string {
  const sorted = (v: unknown): unknown =>
    isMap(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted(v[k])])) : Array.isArray(v) ? v.map(sorted) : v;
  return JSON.stringify(sorted(value)).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
