import * as pulumi from '@pulumi/pulumi';
import type { PodOutput, PodsInputs, PodsOutputs } from './pods-impl.ts';

export type { PodOutput } from './pods-impl.ts';

// Captured by the serialized provider instead of module objects (see process.ts).
const IMPL = new URL('./pods-impl.ts', import.meta.url).pathname;
type Impl = typeof import('./pods-impl.ts');

const provider: pulumi.dynamic.ResourceProvider = {
  async diff(_id: string, olds: PodsOutputs, news: PodsInputs) {
    const changed =
      JSON.stringify([olds.subnet, olds.pods]) !== JSON.stringify([news.subnet, news.pods]);
    // A new stack name is a new set of pods: replace, removing the old ones first.
    return {
      changes: changed || olds.stack !== news.stack,
      replaces: olds.stack !== news.stack ? ['stack'] : [],
      deleteBeforeReplace: true,
    };
  },
  async create(inputs: PodsInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { id: inputs.stack, outs: await impl.ensurePods(inputs, true) };
  },
  async update(_id: string, _olds: PodsOutputs, news: PodsInputs) {
    const impl = (await import(IMPL)) as Impl;
    return { outs: await impl.ensurePods(news) };
  },
  async read(id: string, props: PodsOutputs) {
    const impl = (await import(IMPL)) as Impl;
    // An empty id tells the engine the pods are gone (a reboot empties /run/netns): `refresh` drops
    // them and the next `up` makes them again.
    return (await impl.podsPresent(props)) ? { id, props } : { id: '', props: {} };
  },
  async delete(_id: string, props: PodsOutputs) {
    const impl = (await import(IMPL)) as Impl;
    await impl.removePods(props.stack);
  },
};

/** Inputs of {@link LocalPods}. */
export interface LocalPodsArgs {
  /** The stack: names the bridge namespace, the host link and every pod (`trellis.<stack>.<pod>`). */
  stack: string;
  /** The stack's /24 (`stackSubnet(basePort)`): `.1` the host's end, slot _s_ at `.2 + s`. */
  subnet: PodsInputs['subnet'];
  /** Pod name → slot. */
  pods: Record<string, number>;
}

/**
 * The stack's pods (ADR 0012): one network namespace and one unprivileged user per pod, joined by
 * the stack's bridge namespace and reached from the host through `trl-<stack>`. Every process that
 * runs in a pod depends on this resource, so `destroy` stops them before the pods go; `delete`
 * then removes every namespace, link, user and left-over process of the stack, by name.
 */
export class LocalPods extends pulumi.dynamic.Resource {
  declare public readonly hostAddress: pulumi.Output<string>;
  declare public readonly members: pulumi.Output<Record<string, PodOutput>>;

  constructor(name: string, args: LocalPodsArgs, opts?: pulumi.CustomResourceOptions) {
    for (const [pod, slot] of Object.entries(args.pods))
      if (!Number.isInteger(slot) || slot < 0)
        throw new pulumi.ResourceError(
          `${name}: pods.${pod}: slot ${slot} is not an integer ≥ 0`,
          undefined,
        );
    super(
      provider,
      name,
      {
        stack: args.stack,
        subnet: args.subnet,
        pods: args.pods,
        hostAddress: undefined,
        members: undefined,
      },
      opts,
      'trellis-local',
      'Pods',
    );
  }
}
