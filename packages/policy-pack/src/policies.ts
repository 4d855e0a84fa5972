/**
 * The Trellis policy pack's rules. Each is a mandatory resource validation over the resources a
 * `pulumi preview`/`up` would create, so a change that breaks an invariant of ARCHITECTURE.md (STRICT
 * mTLS, pinned images, limits, no open edges, encrypted data paths, data clients with certificates, no
 * secrets in plain config) is stopped before it reaches a cluster.
 */
import type { ResourceValidationPolicy } from '@pulumi/policy';
import { chartImagesPinnedByDigest, imagesPinnedByDigest } from './image-rules.ts';
import {
  authorizationAllowNeedsFrom,
  destinationRuleMutualTls,
  noLoadBalancerOutsideGateway,
  peerAuthenticationStrict,
} from './mesh-rules.ts';
import {
  containersHaveLimits,
  dataClientsPresentCertificates,
  noPlaintextDataListeners,
  noSecretsInPlainConfig,
} from './workload-rules.ts';

export {
  chartDigestValues,
  chartImagesPinnedByDigest,
  imagesPinnedByDigest,
} from './image-rules.ts';
export {
  authorizationAllowNeedsFrom,
  destinationRuleMutualTls,
  gatewayRoleLabel,
  noLoadBalancerOutsideGateway,
  peerAuthenticationStrict,
} from './mesh-rules.ts';
export {
  containersHaveLimits,
  dataClientsPresentCertificates,
  noPlaintextDataListeners,
  noSecretsInPlainConfig,
} from './workload-rules.ts';

/** Every mandatory rule of the pack: a violation stops `pulumi preview`/`up`. */
export const policies: ResourceValidationPolicy[] = [
  peerAuthenticationStrict,
  destinationRuleMutualTls,
  noLoadBalancerOutsideGateway,
  containersHaveLimits,
  imagesPinnedByDigest,
  authorizationAllowNeedsFrom,
  noPlaintextDataListeners,
  noSecretsInPlainConfig,
  dataClientsPresentCertificates,
];

/** Advisory rules: reported, never blocking. */
export const advisoryPolicies: ResourceValidationPolicy[] = [chartImagesPinnedByDigest];
