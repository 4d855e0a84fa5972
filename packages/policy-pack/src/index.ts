/**
 * The Trellis policy pack. Run it with any stack:
 * `pulumi preview --policy-pack packages/policy-pack` (see docs/environments.md).
 */
import { PolicyPack } from '@pulumi/policy';
import { advisoryPolicies, policies } from './policies.ts';

// The pack default is mandatory; the advisory rules say so themselves.
new PolicyPack('trellis', {
  policies: [...policies, ...advisoryPolicies],
  enforcementLevel: 'mandatory',
});
