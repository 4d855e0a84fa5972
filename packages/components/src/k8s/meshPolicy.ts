import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { objectResourceName } from './common.ts';
import type { K8sObject } from './common.ts';

/** Kinds the mesh policy may contain (what the Istio compiler emits). */
const allowedKinds = new Set([
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
  'DestinationRule',
  'Sidecar',
]);

/** Arguments of {@link MeshPolicy}. */
export interface MeshPolicyArgs {
  /** Compiled Istio objects (`compileIstio(model, { namespace, region })`). */
  objects: K8sObject[];
  /** Resources the policy must wait for (Istio CRDs, namespaces). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * The mesh's authorization and authentication, exactly as the policy compiler produced it. Each object
 * becomes one resource, so a `pulumi preview` shows policy changes one by one. Refuses anything that
 * would weaken STRICT mTLS, so a compiler bug cannot open the mesh.
 */
export class MeshPolicy extends pulumi.ComponentResource {
  /** `<kind>/<namespace>/<name>` of every object applied. */
  public readonly applied: pulumi.Output<string[]>;

  constructor(name: string, args: MeshPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:MeshPolicy', name, {}, opts);
    const seen = new Set<string>();
    args.objects.forEach((obj, i) => {
      if (!allowedKinds.has(obj.kind) || !obj.apiVersion.includes('istio.io/')) {
        throw new pulumi.ResourceError(
          `MeshPolicy ${name}: objects[${i}] is ${obj.apiVersion}/${obj.kind}, not an Istio security or traffic policy`,
          this,
        );
      }
      if (!obj.metadata?.name || !obj.metadata.namespace) {
        throw new pulumi.ResourceError(
          `MeshPolicy ${name}: objects[${i}].metadata needs a name and a namespace`,
          this,
        );
      }
      const spec = (obj.spec ?? {}) as Record<string, unknown>;
      const mode = (spec.mtls as { mode?: string } | undefined)?.mode;
      if (obj.kind === 'PeerAuthentication' && mode !== undefined && mode !== 'STRICT') {
        throw new pulumi.ResourceError(
          `MeshPolicy ${name}: objects[${i}] (${obj.metadata.namespace}/${obj.metadata.name}) sets spec.mtls.mode ${mode}; only STRICT is allowed`,
          this,
        );
      }
      const key = `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}`;
      if (seen.has(key)) {
        throw new pulumi.ResourceError(`MeshPolicy ${name}: objects[${i}] duplicates ${key}`, this);
      }
      seen.add(key);
    });
    for (const obj of args.objects) {
      const { apiVersion, kind, metadata, ...rest } = obj;
      new k8s.apiextensions.CustomResource(
        objectResourceName(name, obj),
        { apiVersion, kind, metadata, ...rest },
        { parent: this, dependsOn: args.dependsOn ?? [] },
      );
    }
    this.applied = pulumi.output([...seen].sort());
    this.registerOutputs({ applied: this.applied });
  }
}
