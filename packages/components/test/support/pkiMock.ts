/**
 * State for the project's own dynamic resources under `pulumi.runtime.setMocks`: the mesh PKI's root
 * and intermediates are made by the real provider code (ca-impl.ts), so a chain check in a test is a
 * real check of how the program wired the CA, and generated passwords are random as in a real run.
 */
import { randomBytes } from 'node:crypto';
import { createRoot, issueIntermediate } from '../../src/pki/ca-impl.ts';
import type { IntermediateInputs, RootInputs } from '../../src/pki/ca-impl.ts';
import { generatedPasswordType } from '../../src/k8s/password.ts';
import { intermediateCaType, rootCaType } from '../../src/pki/meshCa.ts';

type Inputs = Record<string, unknown>;

/** State for one of the project's dynamic resource types, or undefined for any other type. */
export async function dynamicState(type: string, inputs: Inputs): Promise<Inputs | undefined> {
  switch (type) {
    case rootCaType:
      return { ...(await createRoot(inputs as unknown as RootInputs)) };
    case intermediateCaType:
      return { ...(await issueIntermediate(inputs as unknown as IntermediateInputs)) };
    case generatedPasswordType:
      return { value: randomBytes(24).toString('base64url').slice(0, Number(inputs.length)) };
    default:
      return undefined;
  }
}
