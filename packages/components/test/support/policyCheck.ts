/** Run the policy pack's rules over what a mocked program registered, as `pulumi preview --policy-pack` would. */
import type { ResourceValidationArgs } from '@pulumi/policy';
import { policies } from '@trellis/policy-pack/policies';
import type { RecordedResource } from './mocks.ts';

/** `<policy>: <message>` for every violation. */
export async function policyViolations(resources: RecordedResource[]): Promise<string[]> {
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
    for (const p of policies) {
      const fns = Array.isArray(p.validateResource) ? p.validateResource : [p.validateResource];
      for (const fn of fns) await fn?.(args, (m) => found.push(`${p.name}: ${m}`));
    }
  }
  return found;
}
