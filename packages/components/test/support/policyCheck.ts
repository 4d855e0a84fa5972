/** Run the policy pack's rules over what a mocked program registered, as `pulumi preview --policy-pack` would. */
import type { ResourceValidationPolicy } from '@pulumi/policy';
import { advisoryPolicies, policies } from '@trellis/policy-pack/policies';
import { validate, validationArgs } from '@trellis/policy-pack/testing/validate';
import type { RecordedResource } from './mocks.ts';

/** `<policy>: <message>` for every violation of a mandatory rule. */
export function policyViolations(resources: RecordedResource[]): Promise<string[]> {
  return check(resources, policies);
}

/** `<policy>: <message>` for every finding of an advisory rule (reported, not blocking). */
export function policyAdvisories(resources: RecordedResource[]): Promise<string[]> {
  return check(resources, advisoryPolicies);
}

async function check(
  resources: RecordedResource[],
  rules: ResourceValidationPolicy[],
): Promise<string[]> {
  const found: string[] = [];
  for (const r of resources) {
    const args = validationArgs(r.type, r.inputs, r.name);
    for (const p of rules) for (const m of await validate(p, args)) found.push(`${p.name}: ${m}`);
  }
  return found;
}
