import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { IstioResource } from '@trellis/policy';
import { objectResourceName } from './common.ts';

/** Kinds the mesh policy may contain (what `compileIstio` emits). */
const allowedKinds = new Set([
  'PeerAuthentication',
  'AuthorizationPolicy',
  'RequestAuthentication',
]);

/** Arguments of {@link MeshPolicy}. */
export interface MeshPolicyArgs {
  /** Istio objects exactly as `compileIstio` produced them (compile.ts, `ClusterArtefacts.mesh`). */
  objects: readonly IstioResource[];
  /** Istio's root namespace: the compiled objects must hold a selector-less STRICT PeerAuthentication there. */
  rootNamespace: string;
  /** Resources the policy must wait for (Istio CRDs, the namespaces it lands in). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * The mesh's authentication and authorization, exactly as the policy compiler produced it, mesh-wide
 * STRICT mTLS included. Each object becomes one resource, so a `pulumi preview` shows policy changes one
 * by one. Refuses anything that would weaken STRICT mTLS or leave the mesh without a mesh-wide STRICT
 * PeerAuthentication, so a compiler bug cannot open the mesh.
 */
export class MeshPolicy extends pulumi.ComponentResource {
  /** `<kind>/<namespace>/<name>` of every object applied. */
  public readonly applied: pulumi.Output<string[]>;
  /** The mesh-wide mTLS mode (always STRICT). */
  public readonly mtlsMode: pulumi.Output<string>;
  /** The mesh-wide PeerAuthentication: data components wait for it, so they start under STRICT. */
  public readonly meshWide: pulumi.Resource;

  constructor(name: string, args: MeshPolicyArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:MeshPolicy', name, {}, opts);
    const seen = new Set<string>();
    args.objects.forEach((obj, i) => {
      if (!allowedKinds.has(obj.kind) || obj.apiVersion !== 'security.istio.io/v1') {
        throw new pulumi.ResourceError(
          `MeshPolicy ${name}: objects[${i}] is ${String(obj.apiVersion)}/${String(obj.kind)}, not an Istio security policy`,
          this,
        );
      }
      if (!obj.metadata?.name || !obj.metadata.namespace) {
        throw new pulumi.ResourceError(
          `MeshPolicy ${name}: objects[${i}].metadata needs a name and a namespace`,
          this,
        );
      }
      if (obj.kind === 'PeerAuthentication' && obj.spec.mtls.mode !== 'STRICT') {
        throw new pulumi.ResourceError(
          `MeshPolicy ${name}: objects[${i}] (${obj.metadata.namespace}/${obj.metadata.name}) sets spec.mtls.mode ${obj.spec.mtls.mode}; only STRICT is allowed`,
          this,
        );
      }
      const key = `${obj.kind}/${obj.metadata.namespace}/${obj.metadata.name}`;
      if (seen.has(key)) {
        throw new pulumi.ResourceError(`MeshPolicy ${name}: objects[${i}] duplicates ${key}`, this);
      }
      seen.add(key);
    });
    const isMeshWide = (o: IstioResource): boolean =>
      o.kind === 'PeerAuthentication' &&
      o.metadata.namespace === args.rootNamespace &&
      o.spec.selector === undefined;
    if (!args.objects.some(isMeshWide)) {
      throw new pulumi.ResourceError(
        `MeshPolicy ${name}: objects hold no mesh-wide PeerAuthentication in ${args.rootNamespace}`,
        this,
      );
    }
    let meshWide: pulumi.Resource | undefined;
    for (const obj of args.objects) {
      const { apiVersion, kind, metadata, spec } = obj;
      const res = new k8s.apiextensions.CustomResource(
        objectResourceName(name, obj),
        { apiVersion, kind, metadata, spec },
        { parent: this, dependsOn: args.dependsOn ?? [] },
      );
      if (isMeshWide(obj)) meshWide = res;
    }
    this.meshWide = meshWide as pulumi.Resource;
    this.applied = pulumi.output([...seen].sort());
    this.mtlsMode = pulumi.output('STRICT');
    this.registerOutputs({ applied: this.applied, mtlsMode: this.mtlsMode });
  }
}
