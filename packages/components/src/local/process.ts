import * as pulumi from '@pulumi/pulumi';
import type { PodLaunch } from '@trellis/local/pods';
import type { ProcessInputs, ProcessOutputs, ReadyProbe } from './process-impl.ts';

export type { ReadyProbe } from './process-impl.ts';

// The provider below is serialized into state and re-hydrated by Pulumi's dynamic-provider host. It
// captures only this path; all logic is imported from it at run time, so it can use real modules.
const IMPL = new URL('./process-impl.ts', import.meta.url).pathname;

type Impl = typeof import('./process-impl.ts');

const provider: pulumi.dynamic.ResourceProvider = {
  async check(_olds: ProcessInputs, news: ProcessInputs) {
    const failures: pulumi.dynamic.CheckFailure[] = [];
    if (!news.command) failures.push({ property: 'command', reason: 'command must not be empty' });
    if (!news.dir?.startsWith('/'))
      failures.push({ property: 'dir', reason: 'dir must be an absolute path' });
    if (!(news.readyTimeoutMs > 0))
      failures.push({ property: 'readyTimeoutMs', reason: 'must be > 0' });
    return { inputs: news, failures };
  },
  async diff(_id: string, olds: ProcessOutputs, news: ProcessInputs) {
    const impl = (await import(IMPL)) as Impl;
    const changed = olds.digest !== impl.digestOf(news);
    // Restart in place: a replacement would start the new process before the old one frees its ports.
    return {
      changes: changed || olds.purgeOnDelete !== news.purgeOnDelete,
      replaces: [],
      deleteBeforeReplace: true,
    };
  },
  async create(inputs: ProcessInputs) {
    const impl = (await import(IMPL)) as Impl;
    const outs = await impl.start(inputs);
    return { id: inputs.name, outs };
  },
  async update(_id: string, olds: ProcessOutputs, news: ProcessInputs) {
    const impl = (await import(IMPL)) as Impl;
    if (olds.digest === impl.digestOf(news))
      return { outs: { ...olds, purgeOnDelete: news.purgeOnDelete } };
    await impl.stop({ dir: olds.dir, purgeOnDelete: false });
    return { outs: await impl.start(news) };
  },
  async read(id: string, props: ProcessOutputs) {
    const impl = (await import(IMPL)) as Impl;
    const live = impl.observe(props);
    // An empty id tells the engine the resource is gone, so `pulumi refresh` drops a dead process.
    return live ? { id, props: live } : { id: '', props: {} };
  },
  async delete(_id: string, props: ProcessOutputs) {
    const impl = (await import(IMPL)) as Impl;
    await impl.stop(props);
  },
};

/** Inputs of a {@link LocalProcess}. */
export interface LocalProcessArgs {
  /** The directory of this process: files, logs, supervisor state, data. */
  dir: pulumi.Input<string>;
  command: pulumi.Input<string>;
  args: pulumi.Input<pulumi.Input<string>[]>;
  /** The complete environment. Pass secrets as `pulumi.secret`; values are not kept in state. */
  env?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  /** Files to write under `dir` (mode 0600) before starting. Contents are not kept in state. */
  files?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  ready: pulumi.Input<ReadyProbe>;
  /** @default 120_000 */
  readyTimeoutMs?: number;
  /** @default 15_000 */
  stopGraceMs?: number;
  /** Remove `dir` with its data on delete. @default true */
  purgeOnDelete?: boolean;
  /**
   * Run in this pod (its network namespace, as its user): `files` become the pod user's, and
   * `<dir>/pod` its cwd and only writable place. Probe its private listeners with `ready.netns`.
   * @default none: on the host, as the engine's user
   */
  pod?: pulumi.Input<PodLaunch>;
  /**
   * Relative paths under `dir` to remove before each start (what an earlier layout left, e.g. a
   * database that must not become reachable once `dir` is a pod's). @default none
   */
  removeBeforeStart?: string[];
}

const defaults = { readyTimeoutMs: 120_000, stopGraceMs: 15_000, purgeOnDelete: true };

/**
 * A real local process managed as a Pulumi resource: `up` starts it under a supervisor that restarts
 * it on crash (as kubelet does), a changed input restarts it in place, `refresh` notices that it is
 * gone, and `destroy` stops its whole process group and removes its directory.
 */
export class LocalProcess extends pulumi.dynamic.Resource {
  declare public readonly pid: pulumi.Output<number>;
  declare public readonly supervisorPid: pulumi.Output<number>;
  declare public readonly restarts: pulumi.Output<number>;
  declare public readonly logFile: pulumi.Output<string>;

  constructor(name: string, args: LocalProcessArgs, opts?: pulumi.CustomResourceOptions) {
    super(
      provider,
      name,
      {
        name,
        dir: args.dir,
        command: args.command,
        args: args.args,
        env: args.env ?? {},
        files: args.files ?? {},
        ready: args.ready,
        readyTimeoutMs: args.readyTimeoutMs ?? defaults.readyTimeoutMs,
        stopGraceMs: args.stopGraceMs ?? defaults.stopGraceMs,
        purgeOnDelete: args.purgeOnDelete ?? defaults.purgeOnDelete,
        ...(args.pod !== undefined ? { pod: args.pod } : {}),
        ...(args.removeBeforeStart !== undefined
          ? { removeBeforeStart: args.removeBeforeStart }
          : {}),
        pid: undefined,
        supervisorPid: undefined,
        restarts: undefined,
        logFile: undefined,
      },
      opts,
      'trellis-local',
      'Process',
    );
  }
}
