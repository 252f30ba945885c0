import { Deployment, StatefulSet } from 'kubernetes-models/apps/v1';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2';
import { Job } from 'kubernetes-models/batch/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Namespace, Secret, Service, ServiceAccount } from 'kubernetes-models/v1';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import type { K8sObject } from './kustomize.js';

/**
 * Kubernetes schema checks for rendered objects. kubernetes-models validates
 * types, formats and required fields, but its schemas allow unknown fields, so
 * a misspelt field (`readinesProbe`) would pass; the second check walks each
 * object against the package's TypeScript declarations and reports every
 * field the API does not have, as `kubectl --validate=strict` would.
 */

type Model = new (data: any) => { validate(): void };

/** apiVersion/kind → model and its declaration file inside kubernetes-models. */
const KINDS: Record<string, { model: Model; dts: string }> = {
  'v1/Namespace': { model: Namespace, dts: 'v1/Namespace.d.ts' },
  'v1/ServiceAccount': { model: ServiceAccount, dts: 'v1/ServiceAccount.d.ts' },
  'v1/ConfigMap': { model: ConfigMap, dts: 'v1/ConfigMap.d.ts' },
  'v1/Secret': { model: Secret, dts: 'v1/Secret.d.ts' },
  'v1/Service': { model: Service, dts: 'v1/Service.d.ts' },
  'apps/v1/Deployment': { model: Deployment, dts: 'apps/v1/Deployment.d.ts' },
  'apps/v1/StatefulSet': { model: StatefulSet, dts: 'apps/v1/StatefulSet.d.ts' },
  'batch/v1/Job': { model: Job, dts: 'batch/v1/Job.d.ts' },
  'autoscaling/v2/HorizontalPodAutoscaler': { model: HorizontalPodAutoscaler, dts: 'autoscaling/v2/HorizontalPodAutoscaler.d.ts' },
  'policy/v1/PodDisruptionBudget': { model: PodDisruptionBudget, dts: 'policy/v1/PodDisruptionBudget.d.ts' },
  'networking.k8s.io/v1/NetworkPolicy': { model: NetworkPolicy, dts: 'networking.k8s.io/v1/NetworkPolicy.d.ts' },
};

const modelsDir = dirname(createRequire(import.meta.url).resolve('kubernetes-models'));
let checker: { program: ts.Program; types: ts.TypeChecker } | undefined;

/** Every schema problem of `obj`; empty when the API server would accept its shape. */
export function schemaProblems(obj: K8sObject): string[] {
  const kind = KINDS[`${obj.apiVersion}/${obj.kind}`];
  if (!kind) return [`no schema registered for ${obj.apiVersion} ${obj.kind}`];
  const problems: string[] = [];
  try {
    new kind.model(forModel(obj)).validate();
  } catch (error) {
    problems.push((error as Error).message);
  }
  return [...problems, ...unknownFields(obj, join(modelsDir, kind.dts), `I${obj.kind}`)];
}

/**
 * kustomize wraps long base64 Secret values at 70 characters; the API server's
 * base64 decoder skips newlines, kubernetes-models' "byte" format does not.
 */
function forModel(obj: K8sObject): K8sObject {
  if (obj.kind !== 'Secret' || !obj.data) return obj;
  const data = Object.fromEntries(Object.entries(obj.data as Record<string, string>).map(([k, v]) => [k, v.replace(/\n/g, '')]));
  return { ...obj, data };
}

function declaredType(file: string, name: string): { types: ts.TypeChecker; type: ts.Type } {
  // One program over every declaration file: type-checking them once costs about a second.
  checker ??= (() => {
    const program = ts.createProgram(
      Object.values(KINDS).map((k) => join(modelsDir, k.dts)),
      { noEmit: true, skipLibCheck: true, types: [], module: ts.ModuleKind.CommonJS, moduleResolution: ts.ModuleResolutionKind.Node10 },
    );
    return { program, types: program.getTypeChecker() };
  })();
  const { program, types } = checker;
  const source = program.getSourceFile(file);
  const moduleSymbol = source && types.getSymbolAtLocation(source);
  const symbol = moduleSymbol && types.getExportsOfModule(moduleSymbol).find((s) => s.name === name);
  if (!symbol) throw new Error(`${name} not found in ${file}`);
  return { types, type: types.getDeclaredTypeOfSymbol(symbol) };
}

function unknownFields(obj: K8sObject, file: string, name: string): string[] {
  const { types, type } = declaredType(file, name);
  const problems: string[] = [];
  const walk = (value: unknown, declared: ts.Type, path: string): void => {
    if (typeof value !== 'object' || value === null) return;
    let t = types.getNonNullableType(declared);
    if (t.isUnion()) {
      // IntOrString, Quantity and the like: only object members can describe an object value.
      const objects = t.types.filter((m) => m.flags & ts.TypeFlags.Object);
      if (objects.length !== 1) return;
      t = objects[0]!;
    }
    if (Array.isArray(value)) {
      if (!types.isArrayType(t)) return void problems.push(`${path}: not a list in the API`);
      const element = types.getTypeArguments(t as ts.TypeReference)[0]!;
      value.forEach((item, i) => walk(item, element, `${path}[${i}]`));
      return;
    }
    const index = types.getIndexInfoOfType(t, ts.IndexKind.String);
    for (const [key, child] of Object.entries(value)) {
      const property = types.getPropertyOfType(t, key);
      if (property) walk(child, types.getTypeOfSymbol(property), `${path}.${key}`);
      else if (index) walk(child, index.type, `${path}.${key}`);
      else problems.push(`${path}.${key}: unknown field`);
    }
  };
  walk(obj, type, `${obj.kind}/${obj.metadata.name}`);
  return problems;
}
