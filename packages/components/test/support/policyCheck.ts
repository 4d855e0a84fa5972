/** Run the policy pack's rules over what a mocked program registered, as `pulumi preview --policy-pack` would. */
import type { ResourceValidationArgs, ResourceValidationPolicy } from '@pulumi/policy';
import { advisoryPolicies, policies } from '@trellis/policy-pack/policies';
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
    const args = {
      type: r.type,
      props: r.inputs,
      urn: `urn:pulumi:test::trellis::${r.type}::${r.name}`,
      name: r.name,
      opts: {},
      stackTags: new Map(),
      isType: () => false,
      asType: () => undefined,
      getConfig: () => ({}),
      notApplicable: (): never => {
        throw new Error('not applicable');
      },
    } as unknown as ResourceValidationArgs;
    for (const p of rules) {
      const fns = Array.isArray(p.validateResource) ? p.validateResource : [p.validateResource];
      for (const fn of fns) await fn?.(args, (m) => found.push(`${p.name}: ${m}`));
    }
  }
  return found;
}
