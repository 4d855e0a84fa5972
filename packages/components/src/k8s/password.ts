import * as pulumi from '@pulumi/pulumi';

/** Inputs of a {@link GeneratedPassword}. */
interface PasswordInputs {
  length: number;
}

/** State of a {@link GeneratedPassword}; `value` is marked secret by the resource. */
interface PasswordOutputs extends PasswordInputs {
  value: string;
}

// `import()` made from text, as in pki/meshCa.ts: vitest would rewrite the syntax into a call Pulumi's
// closure serializer cannot capture.
const importCrypto = new Function('return import("node:crypto")') as () => Promise<
  typeof import('node:crypto')
>;

// Serialized into the state of every password, so it is self-contained and small: no module path, only
// node:crypto, which every dynamic-provider host has.
const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: PasswordInputs, news: PasswordInputs) {
    const ok = Number.isInteger(news.length) && news.length >= 16 && news.length <= 128;
    return {
      inputs: news,
      failures: ok ? [] : [{ property: 'length', reason: 'must be an integer in [16, 128]' }],
    };
  },
  async diff(_id: string, olds: PasswordOutputs, news: PasswordInputs) {
    // Generated once; only a different length makes a new one.
    const replace = olds.length !== news.length;
    return { changes: replace, replaces: replace ? ['length'] : [] };
  },
  async create(inputs: PasswordInputs) {
    const { randomInt, randomUUID } = await importCrypto();
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    let value = '';
    // randomInt is uniform (rejection sampling inside), so every character carries log2(62) bits.
    for (let i = 0; i < inputs.length; i++) value += alphabet[randomInt(alphabet.length)];
    return { id: randomUUID(), outs: { length: inputs.length, value } };
  },
};

/** The type token of {@link GeneratedPassword} (for tests that look for it). */
export const generatedPasswordType = 'pulumi-nodejs:dynamic/trellis-k8s:GeneratedPassword';

/** Arguments of {@link GeneratedPassword}. */
export interface GeneratedPasswordArgs {
  /** Characters, letters and digits only (keystore and JDBC friendly). @default 32 */
  length?: number;
}

/**
 * A random password generated once at create and kept only in state, where `value` is encrypted as a
 * Pulumi secret. Replaces `@pulumi/random`'s RandomPassword, whose plugin no reachable registry serves.
 */
export class GeneratedPassword extends pulumi.dynamic.Resource {
  /** The password (secret). */
  declare public readonly value: pulumi.Output<string>;

  constructor(name: string, args: GeneratedPasswordArgs = {}, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      { length: args.length ?? 32, value: undefined },
      { ...opts, additionalSecretOutputs: ['value'] },
      'trellis-k8s',
      'GeneratedPassword',
    );
  }
}
