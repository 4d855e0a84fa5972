/**
 * Rules on the mesh and its exposure: STRICT mTLS (PeerAuthentication, DestinationRule), ALLOW rules
 * that name their callers, and no cloud load balancer outside the gateway.
 */
import type { ResourceValidationPolicy } from '@pulumi/policy';
import { labelKeys } from '@trellis/contracts';
import { arr, isKind, leaves, obj, type Props } from './resources.ts';

/** PeerAuthentication must be STRICT, including every port-level override. */
export const peerAuthenticationStrict: ResourceValidationPolicy = {
  name: 'peer-authentication-strict',
  description: 'Istio PeerAuthentication must set mtls.mode STRICT (and STRICT on every port).',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (!isKind(args, 'security.istio.io', 'PeerAuthentication')) return;
    const spec = obj(args.props.spec);
    const mode = obj(spec.mtls).mode;
    if (mode !== 'STRICT') {
      report(
        `PeerAuthentication ${args.name}: spec.mtls.mode is ${String(mode ?? 'unset')}, must be STRICT`,
      );
    }
    for (const [port, setting] of Object.entries(obj(spec.portLevelMtls))) {
      const m = obj(setting).mode;
      if (m !== 'STRICT') {
        report(
          `PeerAuthentication ${args.name}: spec.portLevelMtls.${port}.mode is ${String(m)}, must be STRICT`,
        );
      }
    }
  },
};

/** A DestinationRule may not turn mesh mTLS off (DISABLE) or into one-way TLS (SIMPLE). */
export const destinationRuleMutualTls: ResourceValidationPolicy = {
  name: 'destination-rule-mutual-tls',
  description: 'Istio DestinationRule TLS mode, where set, must be ISTIO_MUTUAL or MUTUAL.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (!isKind(args, 'networking.istio.io', 'DestinationRule')) return;
    const spec = obj(args.props.spec);
    const policies: { path: string; tp: Props }[] = [
      { path: 'spec.trafficPolicy', tp: obj(spec.trafficPolicy) },
    ];
    arr(spec.subsets).forEach((s, i) =>
      policies.push({ path: `spec.subsets[${i}].trafficPolicy`, tp: obj(obj(s).trafficPolicy) }),
    );
    for (const { path, tp } of policies) {
      const tlsSettings: { path: string; tls: Props }[] = [
        { path: `${path}.tls`, tls: obj(tp.tls) },
      ];
      arr(tp.portLevelSettings).forEach((p, i) =>
        tlsSettings.push({ path: `${path}.portLevelSettings[${i}].tls`, tls: obj(obj(p).tls) }),
      );
      for (const { path: p, tls } of tlsSettings) {
        if (tls.mode !== undefined && tls.mode !== 'ISTIO_MUTUAL' && tls.mode !== 'MUTUAL') {
          report(
            `DestinationRule ${args.name}: ${p}.mode is ${String(tls.mode)}, must be ISTIO_MUTUAL or MUTUAL`,
          );
        }
      }
    }
  },
};

/** An ALLOW rule without `from` allows every caller: the mesh identity check is gone. */
export const authorizationAllowNeedsFrom: ResourceValidationPolicy = {
  name: 'authorization-allow-needs-from',
  description:
    'An Istio AuthorizationPolicy with action ALLOW must name the callers (from) in every rule.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (!isKind(args, 'security.istio.io', 'AuthorizationPolicy')) return;
    const spec = obj(args.props.spec);
    const action = spec.action ?? 'ALLOW';
    if (action !== 'ALLOW') return;
    arr(spec.rules).forEach((rule, i) => {
      const from = arr(obj(rule).from);
      if (from.length === 0 || from.some((f) => Object.keys(obj(obj(f).source)).length === 0)) {
        report(`AuthorizationPolicy ${args.name}: spec.rules[${i}] allows without a from.source`);
      }
    });
  },
};

/** Label that marks the one Service allowed to be a LoadBalancer: the gateway's. */
export const gatewayRoleLabel = labelKeys.role;

/** Only the gateway may be exposed through a cloud load balancer. */
export const noLoadBalancerOutsideGateway: ResourceValidationPolicy = {
  name: 'no-loadbalancer-outside-gateway',
  description: `A Service of type LoadBalancer is only allowed for the gateway (label ${gatewayRoleLabel}=gateway).`,
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (isKind(args, 'core', 'Service')) {
      const labels = obj(obj(args.props.metadata).labels);
      if (obj(args.props.spec).type === 'LoadBalancer' && labels[gatewayRoleLabel] !== 'gateway') {
        report(
          `Service ${args.name}: type LoadBalancer outside the gateway; use ClusterIP and route through the gateway`,
        );
      }
      return;
    }
    if (args.type === 'kubernetes:helm.sh/v3:Release') {
      const chart = String(args.props.chart ?? '');
      if (chart.endsWith('nginx-gateway-fabric')) return;
      for (const leaf of leaves(args.props.values, 'values')) {
        if (leaf.key === 'type' && leaf.value === 'LoadBalancer') {
          report(
            `Helm release ${args.name} (${chart}): ${leaf.path} is LoadBalancer outside the gateway`,
          );
        }
      }
    }
  },
};
