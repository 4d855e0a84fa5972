/**
 * Run a Pulumi program under mocks with the configuration of one committed `Pulumi.<stack>.yaml`, and
 * look at what it would create. Used by the infra/* stack tests.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pulumi from '@pulumi/pulumi';
import { parse } from 'yaml';
import { RecordingMocks, settle } from './mocks.ts';

/** Flattened config of a stack file: `ns:key` → string (objects as JSON, as Pulumi passes them). */
export function stackConfig(dir: string, stack: string): Record<string, string> {
  const doc = parse(readFileSync(join(dir, `Pulumi.${stack}.yaml`), 'utf8')) as {
    config?: Record<string, unknown>;
  };
  return Object.fromEntries(
    Object.entries(doc.config ?? {}).map(([k, v]) => [
      k,
      typeof v === 'string' ? v : JSON.stringify(v),
    ]),
  );
}

/** What one run of a program produced. */
export interface StackRun {
  mocks: RecordingMocks;
  outputs: Record<string, unknown>;
  /** Names of outputs that are secret. */
  secretOutputs: string[];
}

/** Run `program` as stack `stack` of `project`, with `config` and the given secret values. */
export async function runStack(opts: {
  project: string;
  stack: string;
  config: Record<string, string>;
  secrets?: Record<string, string>;
  mocks: RecordingMocks;
  program: () => Promise<Record<string, unknown>>;
}): Promise<StackRun> {
  await pulumi.runtime.setMocks(opts.mocks, opts.project, opts.stack, false);
  const all = { ...opts.config, ...(opts.secrets ?? {}) };
  pulumi.runtime.setAllConfig(all, Object.keys(opts.secrets ?? {}));
  const result = await opts.program();
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  for (const [k, v] of Object.entries(result)) {
    const out: pulumi.Output<unknown> = pulumi.output(v as pulumi.Input<unknown>);
    if (await pulumi.isSecret(out)) secretOutputs.push(k);
    outputs[k] = await new Promise((res) => out.apply((x: unknown) => res(x)));
  }
  await settle(opts.mocks);
  return { mocks: opts.mocks, outputs, secretOutputs };
}
