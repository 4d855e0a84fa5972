/** Reading the resources a policy sees: Kubernetes kinds, workload containers, string leaves. */
import type { ResourceValidationArgs } from '@pulumi/policy';

export type Props = Record<string, unknown>;

export const obj = (v: unknown): Props =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Props) : {};
export const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Kubernetes resource type token: `kubernetes:<group>/<version>:<Kind>` (core: `core/v1`). */
export function k8sKind(type: string): { group: string; kind: string } | undefined {
  const m = /^kubernetes:([^:]+)\/[^/:]+:([A-Za-z0-9]+)$/.exec(type);
  return m ? { group: m[1] as string, kind: m[2] as string } : undefined;
}

export function isKind(args: ResourceValidationArgs, group: string, kind: string): boolean {
  const k = k8sKind(args.type);
  return k !== undefined && k.group === group && k.kind === kind;
}

const workloadKinds = new Set([
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'CronJob',
  'Pod',
]);

/** The pod spec of a workload resource, with its JSON path; undefined for other kinds. */
export function podSpecOf(args: ResourceValidationArgs): { base: string; pod: Props } | undefined {
  const k = k8sKind(args.type);
  if (!k || !workloadKinds.has(k.kind)) return undefined;
  const spec = obj(args.props.spec);
  if (k.kind === 'Pod') return { base: 'spec', pod: spec };
  if (k.kind === 'CronJob')
    return {
      base: 'spec.jobTemplate.spec.template.spec',
      pod: obj(obj(obj(obj(spec.jobTemplate).spec).template).spec),
    };
  return { base: 'spec.template.spec', pod: obj(obj(spec.template).spec) };
}

/** Containers (and init containers) of a workload resource, with their JSON path. */
export function containersOf(args: ResourceValidationArgs): { path: string; c: Props }[] {
  const found = podSpecOf(args);
  if (!found) return [];
  const { base, pod } = found;
  return [
    ...arr(pod.initContainers).map((c, i) => ({
      path: `${base}.initContainers[${i}]`,
      c: obj(c),
    })),
    ...arr(pod.containers).map((c, i) => ({ path: `${base}.containers[${i}]`, c: obj(c) })),
  ];
}

/** Every string leaf of a value, with its path. */
export function* leaves(
  v: unknown,
  path: string,
): Generator<{ path: string; key: string; value: string }> {
  if (typeof v === 'string') {
    yield { path, key: path.split('.').pop() ?? '', value: v };
  } else if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) yield* leaves(x, `${path}[${i}]`);
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) yield* leaves(x, path ? `${path}.${k}` : k);
  }
}
