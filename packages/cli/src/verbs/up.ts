import { rmSync } from 'node:fs';
import { relative } from 'node:path';
import { ensureAll, stackTools } from '@trellis/local/toolchain';
import { liveResources, podsPreflightMessage, stackHasPods, sweepStack } from '../pods.ts';
import { ROOT, runPulumi, selectStack, stackDir } from '../stack.ts';

/** `--stack NAME` from the arguments, else `local`. */
export function stackArg(args: string[]): string {
  const i = args.indexOf('--stack');
  if (i < 0) return 'local';
  const v = args[i + 1];
  if (!v || v.startsWith('-')) throw new Error('--stack needs a stack name');
  return v;
}

/** Stack outputs as plain JSON (secrets stay hidden unless `showSecrets`). */
export async function stackOutputs(
  stack: string,
  showSecrets = false,
): Promise<Record<string, unknown>> {
  const { bin, env, base } = await selectStack(stack);
  const args = ['stack', 'output', '--json', ...base];
  if (showSecrets) args.push('--show-secrets');
  const r = await runPulumi(bin, args, env, true);
  if (r.code !== 0) throw new Error(`could not read the outputs of stack ${stack}`);
  return JSON.parse(r.stdout || '{}') as Record<string, unknown>;
}

/** How many resources the Pulumi state of `stack` holds (stack and providers aside). */
async function stateSize(stack: string): Promise<number> {
  const { bin, env, base } = await selectStack(stack);
  const r = await runPulumi(bin, ['stack', 'export', ...base], env, true);
  if (r.code !== 0) throw new Error(`could not read the state of stack ${stack}`);
  return liveResources(r.stdout);
}

/**
 * With no state of the stack, anything of it on the machine is a leftover (a lost state, a crash
 * before the first resource was recorded): remove it before Pulumi starts. With a state, Pulumi
 * reconciles, and `LocalPods` cleans up a crash's pods when it creates them.
 */
async function sweepIfStateless(stack: string): Promise<void> {
  if ((await stateSize(stack)) > 0) return;
  for (const line of await sweepStack(stack, stackDir(stack)))
    process.stderr.write(`[trellis] leftover of stack ${stack}: ${line}\n`);
}

/** The `url` of the stack output `prometheus`, when the stack runs one. */
export function prometheusUrl(output: unknown): string | null {
  if (typeof output !== 'object' || output === null || !('url' in output)) return null;
  return typeof output.url === 'string' ? output.url : null;
}

/** The dashboards' index from the stack output `prometheus` (`consolesUrl`), or null. */
export function consolesUrl(output: unknown): string | null {
  if (typeof output !== 'object' || output === null || !('consolesUrl' in output)) return null;
  return typeof output.consolesUrl === 'string' ? output.consolesUrl : null;
}

/** The `jaegerUrl` of the stack output `tracing`, when the stack runs the trace pipeline. */
export function jaegerUrl(output: unknown): string | null {
  if (typeof output !== 'object' || output === null || !('jaegerUrl' in output)) return null;
  return typeof output.jaegerUrl === 'string' ? output.jaegerUrl : null;
}

/** `up [--stack S]`: install the toolchain, then `pulumi up` the local project, then say how to call it. */
export async function up(args: string[]): Promise<number> {
  const stack = stackArg(args);
  // Before anything is installed or started: pods need root and a few system tools.
  const missing = stackHasPods(stack) ? podsPreflightMessage(stack) : null;
  if (missing !== null) {
    process.stderr.write(`[trellis] ${missing}\n`);
    return 1;
  }
  await ensureAll(stackTools);
  const { bin, env, common } = await selectStack(stack);
  await sweepIfStateless(stack);
  process.stderr.write(
    `[trellis] pulumi up --stack ${stack} (infra/local); logs under .trellis/${stack}/run/*/process.log\n`,
  );
  const t0 = Date.now();
  const r = await runPulumi(bin, ['up', '--yes', '--skip-preview', ...common], env);
  if (r.code !== 0) return r.code;
  const out = await stackOutputs(stack);
  const secs = ((Date.now() - t0) / 1000).toFixed(0);
  const url = typeof out.ingressUrl === 'string' ? out.ingressUrl : null;
  const bundle = typeof out.trustBundle === 'string' ? relative(ROOT, out.trustBundle) : null;
  process.stdout.write(`\nTrellis stack '${stack}' is up (${secs} s).\n`);
  if (url && bundle) {
    const flag = stack === 'local' ? '' : ` --stack ${stack}`;
    process.stdout.write(
      `Ingress: ${url}\nTry it:\n  curl --cacert ${bundle} -H "Authorization: Bearer $(./trellis token --as alice${flag})" ` +
        `-H 'content-type: application/json' -d '{"sku":"demo-1","quantity":1}' ${url}/orders\n`,
    );
  }
  const prom = prometheusUrl(out.prometheus);
  if (prom) process.stdout.write(`Prometheus: ${prom} (scrape targets: ${prom}/targets)\n`);
  const consoles = consolesUrl(out.prometheus);
  if (consoles) process.stdout.write(`Dashboards: ${consoles}\n`);
  const jaeger = jaegerUrl(out.tracing);
  if (jaeger)
    process.stdout.write(
      `Jaeger (query API): ${jaeger}/api/traces/<trace id> (the trace id is the request id nginx logs)\n`,
    );
  return 0;
}

/**
 * `down [--stack S]`: `pulumi destroy`, which stops every process and removes its files and pods;
 * then whatever no state knew of (a lost state: its supervisors and pods), and the stack's dir.
 */
export async function down(args: string[]): Promise<number> {
  const stack = stackArg(args);
  const { bin, env, common } = await selectStack(stack);
  const r = await runPulumi(bin, ['destroy', '--yes', '--skip-preview', ...common], env);
  if (r.code !== 0) return r.code;
  // The state is empty now: anything of the stack still here was never in it.
  for (const line of await sweepStack(stack, stackDir(stack)))
    process.stderr.write(`[trellis] leftover of stack ${stack}: ${line}\n`);
  // Each resource removes its own files; this sweeps the emptied directories of the stack.
  rmSync(stackDir(stack), { recursive: true, force: true });
  return 0;
}
