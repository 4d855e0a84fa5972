/**
 * What the cluster test needs around `pulumi`: a throwaway Pulumi workspace (PULUMI_HOME with the cached
 * Kubernetes provider installed from its file, a file backend, the passphrase secrets provider) whose
 * project runs infra/k8s's own index.ts, and the CRDs of the cached set applied to the control plane.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { CrdSet, CustomResourceDefinition } from '@trellis/local/toolchain';
import { kubernetesProvider, pulumiEnv } from '@trellis/local/toolchain';
import type { KubeClient } from '@trellis/local/harness';
import { parse, stringify } from 'yaml';

/** infra/k8s. */
export const projectDir = resolve(import.meta.dirname, '../..');

/** The provider release the npm SDK asks the engine for (packages/local/src/toolchain). */
export const providerVersion = '4.25.0';

/** The outcome of one `pulumi` run; never thrown, so that tests can assert on failures too. */
export interface PulumiResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** A Pulumi workspace for one stack of infra/k8s, entirely under `dir`. */
export interface PulumiWorkspace {
  /** Run `pulumi <args> --non-interactive` in the workspace's project. */
  run(args: readonly string[], timeoutMs?: number): Promise<PulumiResult>;
  /** As {@link run}, throwing with the output when the exit code is not 0. */
  ok(args: readonly string[], timeoutMs?: number): Promise<PulumiResult>;
}

/** A program of its own instead of infra/k8s: its files, run with infra/k8s's node_modules. */
export interface OwnProgram {
  name: string;
  /** File name → content; `main` must be one of them. */
  files: Record<string, string>;
  main: string;
}

/**
 * Make the workspace under `dir`: a project dir holding infra/k8s's Pulumi.yaml with `main` pointing at
 * the real index.ts (so modules resolve from the repository, while stack config and state stay in
 * `dir`), or `program`'s files; the stack config `config` as `Pulumi.<stack>.yaml`; and the provider
 * plugin installed from the cache.
 */
export async function pulumiWorkspace(opts: {
  dir: string;
  stack: string;
  kubeconfig: string;
  config: Record<string, unknown>;
  passphrase: string;
  program?: OwnProgram;
}): Promise<PulumiWorkspace> {
  const program = join(opts.dir, 'program');
  mkdirSync(program, { recursive: true });
  mkdirSync(join(opts.dir, 'state'), { recursive: true });
  const project = parse(readFileSync(join(projectDir, 'Pulumi.yaml'), 'utf8')) as Record<
    string,
    unknown
  >;
  if (opts.program) {
    for (const [name, text] of Object.entries(opts.program.files))
      writeFileSync(join(program, name), text);
    symlinkSync(join(projectDir, 'node_modules'), join(program, 'node_modules'));
  }
  writeFileSync(
    join(program, 'Pulumi.yaml'),
    stringify(
      opts.program
        ? {
            name: opts.program.name,
            runtime: project.runtime,
            main: opts.program.main,
          }
        : { ...project, main: join(projectDir, project.main as string) },
    ),
  );
  writeFileSync(join(program, `Pulumi.${opts.stack}.yaml`), stringify({ config: opts.config }));
  const tool = await pulumiEnv({ home: join(opts.dir, 'pulumi-home') });
  const env: NodeJS.ProcessEnv = {
    ...tool.env,
    PULUMI_BACKEND_URL: `file://${join(opts.dir, 'state')}`,
    PULUMI_CONFIG_PASSPHRASE: opts.passphrase,
    // The provider falls back to KUBECONFIG when its own config has none; both name the test's.
    KUBECONFIG: opts.kubeconfig,
  };
  const run = (args: readonly string[], timeoutMs = 900_000): Promise<PulumiResult> =>
    new Promise((done) => {
      const t0 = Date.now();
      execFile(
        tool.bin,
        [...args, '--non-interactive'],
        {
          cwd: program,
          env,
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
          maxBuffer: 64 * 1024 * 1024,
        },
        (err, stdout, stderr) => {
          const code = err ? (typeof err.code === 'number' ? err.code : -1) : 0;
          done({ code, stdout, stderr, ms: Date.now() - t0 });
        },
      );
    });
  const ok = async (args: readonly string[], timeoutMs?: number): Promise<PulumiResult> => {
    const r = await run(args, timeoutMs);
    if (r.code !== 0)
      throw new Error(`pulumi ${args.join(' ')} exited ${r.code}\n${r.stdout}\n${r.stderr}`);
    return r;
  };
  const plugin = await kubernetesProvider.ensure();
  await ok(['plugin', 'install', 'resource', 'kubernetes', providerVersion, '--file', plugin]);
  await ok(['stack', 'init', opts.stack, '--secrets-provider', 'passphrase']);
  return { run, ok };
}

/** The `<group>/<version>` path prefix of a served kind, for list URLs. */
export function apiPrefix(apiVersion: string): string {
  return apiVersion.includes('/') ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
}

/**
 * Create every CRD of the set and wait until each is Established; returns how many. A CRD the API
 * server refuses fails the test with its name.
 */
export async function applyCrds(
  client: KubeClient,
  set: CrdSet,
  wait: (what: string, check: () => Promise<boolean>) => Promise<void>,
): Promise<number> {
  const path = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
  const docs: CustomResourceDefinition[] = set.documents;
  for (const crd of docs) await client.create(path, crd);
  for (const crd of docs) {
    await wait(`CRD ${crd.metadata.name} Established`, async () => {
      const live = await client.get<{
        status?: { conditions?: { type: string; status: string }[] };
      }>(`${path}/${crd.metadata.name}`);
      return (
        live.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ??
        false
      );
    });
  }
  return docs.length;
}
