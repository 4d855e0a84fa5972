/**
 * The Trellis policy pack. Run it with any stack:
 * `pulumi preview --policy-pack packages/policy-pack` (see docs/environments.md).
 */
import { PolicyPack } from '@pulumi/policy';
import { policies } from './policies.ts';

new PolicyPack('trellis', { policies, enforcementLevel: 'mandatory' });
