import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { labelKeys } from '@trellis/contracts';
import type { PinnedChart } from './versions.ts';

/** How a namespace joins the mesh: Envoy sidecars, or ambient (ztunnel, L4 mTLS). */
export type DataplaneMode = 'sidecar' | 'ambient';

/** A Kubernetes object as produced by the policy compilers. */
export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

/** Labels that put a namespace in the mesh (istio.io/latest/docs/setup/additional-setup/sidecar-injection, ambient/usage/add-workloads). */
export function meshLabels(mode: DataplaneMode): Record<string, string> {
  return mode === 'ambient'
    ? { 'istio.io/dataplane-mode': 'ambient' }
    : { 'istio-injection': 'enabled' };
}

/** A namespace labelled into the mesh. */
export function meshNamespace(
  resourceName: string,
  namespace: string,
  mode: DataplaneMode,
  opts: pulumi.CustomResourceOptions,
): k8s.core.v1.Namespace {
  return new k8s.core.v1.Namespace(
    resourceName,
    {
      metadata: {
        name: namespace,
        labels: { ...meshLabels(mode), [labelKeys.partOf]: 'trellis' },
      },
    },
    opts,
  );
}

/**
 * Who installs the operators and their CRDs (Istio, cert-manager, Strimzi, K8ssandra, NGINX Gateway
 * Fabric, the Keycloak operator): the platform itself, from the pinned charts and manifests
 * (`install`), or the platform team beforehand, e.g. with GitOps (`preinstalled`). With `preinstalled`
 * the platform creates only its own objects (namespaces, CAs, policy, custom resources, services) and
 * expects the CRDs to be served already; the cluster test uses it, since no registry it reaches serves
 * the charts.
 */
export type OperatorSource = 'install' | 'preinstalled';

/**
 * {@link pinnedRelease} when the platform installs operators, nothing when they are preinstalled: the
 * result goes straight into `dependsOn` lists.
 */
export function operatorRelease(
  operators: OperatorSource | undefined,
  ...release: Parameters<typeof pinnedRelease>
): pulumi.Resource[] {
  return (operators ?? 'install') === 'install' ? [pinnedRelease(...release)] : [];
}

/** A Helm release of a pinned chart; fails early if the pin is missing. */
export function pinnedRelease(
  resourceName: string,
  pin: PinnedChart,
  args: { namespace: pulumi.Input<string>; releaseName: string; values?: pulumi.Input<object> },
  opts: pulumi.CustomResourceOptions,
): k8s.helm.v3.Release {
  if (!/^v?\d+\.\d+\.\d+$/.test(pin.version)) {
    throw new Error(`chart ${pin.chart}: version must be an exact x.y.z pin, got "${pin.version}"`);
  }
  return new k8s.helm.v3.Release(
    resourceName,
    {
      name: args.releaseName,
      chart: pin.chart,
      version: pin.version,
      ...(pin.repo ? { repositoryOpts: { repo: pin.repo } } : {}),
      namespace: args.namespace,
      values: args.values ?? {},
      atomic: true,
      cleanupOnFail: true,
      timeout: 900,
    },
    opts,
  );
}

/** Resource name for a compiled object: stable, unique per kind/namespace/name. */
export function objectResourceName(
  prefix: string,
  obj: { kind: string; metadata: { name: string; namespace?: string } },
): string {
  const ns = obj.metadata.namespace ?? 'cluster';
  return `${prefix}-${obj.kind.toLowerCase()}-${ns}-${obj.metadata.name}`;
}
