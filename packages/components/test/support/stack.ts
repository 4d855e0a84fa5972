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

// @pulumi/pulumi's own wait for every outstanding registration (runtime/settings.js, marked internal):
// a dynamic resource's provider is serialized before it registers, which on two busy cores can leave
// a gap longer than settle()'s quiet period.
const waitForRPCs = (pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> })
  .waitForRPCs;

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
  await waitForRPCs?.();
  await settle(opts.mocks);
  return { mocks: opts.mocks, outputs, secretOutputs };
}

/** A Pulumi project under test: its folder (with `Pulumi.<stack>.yaml`) and how to load its program. */
export interface ProjectUnderTest {
  project: string;
  dir: string;
  /** `() => import('../index.ts')`: loaded on the first run, after the test's own setup. */
  load: () => Promise<{ default: unknown }>;
  /** Fresh mocks for each run. */
  mocks: () => RecordingMocks;
  /** Secret config of every run unless a run says otherwise. */
  secrets?: Record<string, string>;
  /** Config over the stack file's for every run (e.g. where the image build output is), by stack. */
  config?: (stack: string) => Record<string, string>;
}

/**
 * A function that runs one committed stack of the project, with `config` over the stack file's values
 * and, when given, other `secrets`.
 */
export function stackRunner(
  p: ProjectUnderTest,
): (
  stack: string,
  over?: { config?: Record<string, string>; secrets?: Record<string, string> },
) => Promise<StackRun> {
  return async (stack, over = {}) =>
    runStack({
      project: p.project,
      stack,
      config: { ...stackConfig(p.dir, stack), ...p.config?.(stack), ...over.config },
      secrets: over.secrets ?? p.secrets ?? {},
      mocks: p.mocks(),
      program: (await p.load()).default as () => Promise<Record<string, unknown>>,
    });
}
