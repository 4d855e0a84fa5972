import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { IstioTelemetryArtefacts } from '@trellis/policy';

/** Arguments of {@link MeshTelemetry}. */
export interface MeshTelemetryArgs {
  /** The compiled telemetry (`ClusterArtefacts.telemetry`): the providers and the Telemetry naming them. */
  compiled: IstioTelemetryArtefacts;
  /** Istio's root namespace: the Telemetry must be there, without a selector, to apply mesh-wide. */
  rootNamespace: string;
  /** Resources it must wait for (the Telemetry CRD, i.e. Istio). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * The mesh-wide `telemetry.istio.io/v1` Telemetry compiled from the model: every sidecar's JSON access
 * log with the audit fields (peer SPIFFE ID, verified claims, RBAC result, route, request id) and, when
 * the stack asks for it, tracing to the cluster's OpenTelemetry collector. Its providers live in
 * istiod's mesh config (the Istio component's `extensionProviders`); this refuses a Telemetry naming a
 * provider the compiled mesh config lacks, or one placed where it would not apply mesh-wide.
 */
export class MeshTelemetry extends pulumi.ComponentResource {
  /** `<namespace>/<name>` of the Telemetry. */
  public readonly telemetry: pulumi.Output<string>;
  /** The providers it turns on: access logging, then tracing (if any). */
  public readonly providers: pulumi.Output<string[]>;

  constructor(name: string, args: MeshTelemetryArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:MeshTelemetry', name, {}, opts);
    const { telemetry: t, extensionProviders } = args.compiled;
    if (t.apiVersion !== 'telemetry.istio.io/v1' || t.kind !== 'Telemetry') {
      throw new pulumi.ResourceError(
        `MeshTelemetry ${name}: compiled.telemetry is ${String(t.apiVersion)}/${String(t.kind)}, not a telemetry.istio.io/v1 Telemetry`,
        this,
      );
    }
    if (t.metadata.namespace !== args.rootNamespace || 'selector' in t.spec) {
      throw new pulumi.ResourceError(
        `MeshTelemetry ${name}: compiled.telemetry must sit in ${args.rootNamespace} without a selector to apply mesh-wide, got namespace ${t.metadata.namespace}`,
        this,
      );
    }
    const defined = new Set(extensionProviders.map((p) => p.name));
    const named = [
      ...t.spec.accessLogging.flatMap((a) => a.providers),
      ...(t.spec.tracing ?? []).flatMap((x) => x.providers),
    ].map((p) => p.name);
    for (const n of named) {
      if (!defined.has(n)) {
        throw new pulumi.ResourceError(
          `MeshTelemetry ${name}: compiled.telemetry names provider "${n}", which compiled.extensionProviders does not define (${[...defined].join(', ')})`,
          this,
        );
      }
    }
    const { apiVersion, kind, metadata, spec } = t;
    new k8s.apiextensions.CustomResource(
      `${name}-telemetry`,
      { apiVersion, kind, metadata, spec },
      { parent: this, dependsOn: args.dependsOn ?? [] },
    );
    this.telemetry = pulumi.output(`${metadata.namespace}/${metadata.name}`);
    this.providers = pulumi.output(named);
    this.registerOutputs({ telemetry: this.telemetry, providers: this.providers });
  }
}
