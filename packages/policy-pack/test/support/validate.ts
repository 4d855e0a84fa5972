/**
 * Run the pack's resource rules without the Pulumi engine: on hand-made resources (the pack's own
 * tests) or on what a mocked program registered (the infra stack tests, via components' policyCheck).
 */
import type { ResourceValidationArgs, ResourceValidationPolicy } from '@pulumi/policy';

/** Resource validation args as the policy engine would build them. */
export function validationArgs(
  type: string,
  props: Record<string, unknown>,
  name = 'r',
): ResourceValidationArgs {
  return {
    type,
    props,
    urn: `urn:pulumi:test::trellis::${type}::${name}`,
    name,
    opts: {
      protect: false,
      ignoreChanges: [],
      aliases: [],
      customTimeouts: { createSeconds: 0, updateSeconds: 0, deleteSeconds: 0 },
      additionalSecretOutputs: [],
    },
    stackTags: new Map(),
    isType: () => false,
    asType: () => undefined,
    getConfig: <T extends object>() => ({}) as T,
    notApplicable: (reason?: string): never => {
      throw new Error(`not applicable: ${reason}`);
    },
  } as unknown as ResourceValidationArgs;
}

/** The messages a rule reports for one resource. */
export async function validate(
  policy: ResourceValidationPolicy,
  args: ResourceValidationArgs,
): Promise<string[]> {
  const found: string[] = [];
  const fns = Array.isArray(policy.validateResource)
    ? policy.validateResource
    : [policy.validateResource];
  for (const fn of fns) await fn?.(args, (message) => found.push(message));
  return found;
}
