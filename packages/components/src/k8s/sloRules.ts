import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import type { PrometheusRule } from '@trellis/policy';
import { objectResourceName } from './common.ts';

/** Arguments of {@link SloRules}. */
export interface SloRulesArgs {
  /** PrometheusRule objects exactly as `compilePrometheusRules` produced them (`ClusterArtefacts.sloRules`). */
  rules: readonly PrometheusRule[];
  /** Resources the rules must wait for (the namespace they land in). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * The SLO recording rules and burn-rate alerts compiled from the model's route budgets, as
 * `monitoring.coreos.com/v1` PrometheusRule objects, one resource per route. Trellis installs no
 * Prometheus Operator: the cluster's monitoring stack (e.g. kube-prometheus-stack) brings the CRD and
 * loads the rules its `ruleSelector` matches, so the platform creates these only when asked
 * (`trellis:sloRules`).
 */
export class SloRules extends pulumi.ComponentResource {
  /** `<namespace>/<name>` of every PrometheusRule applied. */
  public readonly applied: pulumi.Output<string[]>;

  constructor(name: string, args: SloRulesArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:SloRules', name, {}, opts);
    const seen = new Set<string>();
    args.rules.forEach((r, i) => {
      if (r.apiVersion !== 'monitoring.coreos.com/v1' || r.kind !== 'PrometheusRule') {
        throw new pulumi.ResourceError(
          `SloRules ${name}: rules[${i}] is ${String(r.apiVersion)}/${String(r.kind)}, not a PrometheusRule`,
          this,
        );
      }
      if (r.spec.groups.length === 0) {
        throw new pulumi.ResourceError(
          `SloRules ${name}: rules[${i}] (${r.metadata.namespace}/${r.metadata.name}) has no rule group`,
          this,
        );
      }
      const key = `${r.metadata.namespace}/${r.metadata.name}`;
      if (seen.has(key))
        throw new pulumi.ResourceError(`SloRules ${name}: rules[${i}] duplicates ${key}`, this);
      seen.add(key);
    });
    for (const r of args.rules) {
      const { apiVersion, kind, metadata, spec } = r;
      new k8s.apiextensions.CustomResource(
        objectResourceName(name, r),
        { apiVersion, kind, metadata, spec },
        { parent: this, dependsOn: args.dependsOn ?? [] },
      );
    }
    this.applied = pulumi.output([...seen].sort());
    this.registerOutputs({ applied: this.applied });
  }
}
