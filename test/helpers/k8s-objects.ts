import { podSpecOf, type K8sObject } from './kustomize.js';

/** Loose shape for reading nested manifest fields in assertions. */
export type Spec = Record<string, any>;

export const spec = (obj: K8sObject) => obj.spec as Spec;

export const ofKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);

/** The object of that kind and name, generated ones matched without their hash suffix. */
export function named(objects: K8sObject[], kind: string, name: string): K8sObject {
  const generated = new RegExp(`^${name}-[a-z0-9]{10}$`);
  const found = objects.find((o) => o.kind === kind && (o.metadata.name === name || generated.test(o.metadata.name)));
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
}

/** Every pod template, with a label for assertion messages. */
export const pods = (objects: K8sObject[]) =>
  objects.flatMap((obj) => {
    const pod = podSpecOf(obj);
    return pod ? [{ where: `${obj.kind}/${obj.metadata.name}`, obj, pod }] : [];
  });

/** Every container and init container, with its pod spec (for pod-level security defaults). */
export const containers = (objects: K8sObject[]) =>
  pods(objects).flatMap(({ where, pod }) =>
    [...(pod.initContainers ?? []), ...pod.containers].map((c: Spec) => ({ where: `${where}/${c.name}`, pod, c })),
  );

/** Whether a label selector (matchLabels only) selects these labels. */
export const selects = (selector: Spec | undefined, labels: Record<string, string>) =>
  !selector?.matchExpressions && Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
