/**
 * The end-to-end suite's stack: `pulumi up --stack e2e` of infra/local once per test run (beside any
 * running `local` stack: another base port), and `pulumi destroy` after the last test.
 */
import type { TestProject } from 'vitest/node';
import { ensureAll } from '@trellis/local/toolchain';
import { runPulumi, selectStack } from '@trellis/cli/stack';

export const E2E_STACK = 'e2e';

declare module 'vitest' {
  export interface ProvidedContext {
    e2eOutputs: Record<string, unknown>;
    e2eSecrets: Record<string, unknown>;
  }
}

async function outputs(showSecrets: boolean): Promise<Record<string, unknown>> {
  const { bin, env, base } = await selectStack(E2E_STACK);
  const args = ['stack', 'output', '--json', ...base];
  if (showSecrets) args.push('--show-secrets');
  const r = await runPulumi(bin, args, env, true);
  if (r.code !== 0) throw new Error('could not read the e2e stack outputs');
  return JSON.parse(r.stdout || '{}') as Record<string, unknown>;
}

export async function setup(project: TestProject): Promise<() => Promise<void>> {
  await ensureAll();
  const { bin, env, common } = await selectStack(E2E_STACK);
  const t0 = Date.now();
  const r = await runPulumi(bin, ['up', '--yes', '--skip-preview', ...common], env);
  if (r.code !== 0) {
    await runPulumi(bin, ['destroy', '--yes', '--skip-preview', ...common], env);
    throw new Error(`pulumi up --stack ${E2E_STACK} failed (exit ${r.code}); see the output above`);
  }
  process.stderr.write(
    `[e2e] stack ${E2E_STACK} up in ${((Date.now() - t0) / 1000).toFixed(0)} s\n`,
  );
  project.provide('e2eOutputs', await outputs(false));
  project.provide('e2eSecrets', await outputs(true));
  return async () => {
    // The last test destroys and checks; this is the safety net when a test failed before it.
    const again = await selectStack(E2E_STACK);
    await runPulumi(again.bin, ['destroy', '--yes', '--skip-preview', ...again.common], again.env);
  };
}
