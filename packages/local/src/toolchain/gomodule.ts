/**
 * Building tools from a Go module of our own under packages/local/go-kube/<name>: for upstream modules whose
 * go.mod replaces their siblings with relative paths (etcd, Kubernetes, the Pulumi Kubernetes provider), which
 * `go install module@version` refuses. Each has its own module so that one tool's dependency graph never moves
 * another's, nor the Pulumi tools module in packages/local/go.
 */
import { mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { run } from './exec.ts';
import { findGo, GO_PROXY, goEnv, goRun, lockOf, type GoToolchain } from './go.ts';
import { progress } from './log.ts';

/** packages/local/go-kube: one Go module per control-plane tool. */
export const kubeModulesDir = fileURLToPath(new URL('../../go-kube/', import.meta.url));

/**
 * `go build -p`: at most two packages compile at once. Every machine of this project has two cores, shared
 * with the tests and other builds; Go's default (GOMAXPROCS) would be the same here, but stating it keeps a
 * build on a bigger box from starving the rest.
 */
export const GO_BUILD_PARALLELISM = 2;

/** One `go build` of packages from a tools module into a directory. */
export interface ModuleBuild {
  /** The module's folder name under packages/local/go-kube, e.g. `etcd`. */
  module: string;
  /** Import paths of the main packages to build. */
  packages: readonly string[];
  /**
   * Where the binaries go: a directory (ending in `/`, each binary named as go names it) or, for one package,
   * the binary's path.
   */
  out: string;
  /** `-ldflags` value, e.g. `-X k8s.io/component-base/version.gitVersion=v1.37.2`. */
  ldflags?: string;
  /** Human description, e.g. `building etcd 3.7.4`. */
  what: string;
  /** The install dir whose lock to keep fresh while the build runs. */
  installDir: string;
  /** @default 90 min */
  timeoutMs?: number;
  /** The module dir to build in. @default `<kubeModulesDir>/<module>` */
  cwd?: string;
  /**
   * Build with cgo (needs a C compiler): only for a tool that cannot work without it, e.g. SPIRE's server,
   * whose SQLite datastore is behind `//go:build cgo`. @default false (static, no C compiler needed)
   */
  cgo?: boolean;
  go?: GoToolchain;
}

/** The folder of one of our tools modules. */
export function moduleDir(module: string): string {
  return join(kubeModulesDir, module);
}

/**
 * `go build -p 2 -trimpath -mod=readonly` of `b.packages` with the module's own go.sum: the pins are ours and
 * reviewed, and a build never edits go.mod behind our back. Static (no cgo unless `b.cgo`), local toolchain
 * only (goEnv).
 */
export async function buildFromModule(b: ModuleBuild): Promise<void> {
  const go = b.go ?? (await findGo());
  progress(
    `${b.what} with Go ${go.version} (modules from ${GO_PROXY}, module ${moduleDir(b.module)})`,
  );
  await goRun(
    [
      'build',
      '-p',
      String(GO_BUILD_PARALLELISM),
      '-trimpath',
      '-mod=readonly',
      ...(b.ldflags ? ['-ldflags', b.ldflags] : []),
      '-o',
      b.out,
      ...b.packages,
    ],
    {
      go,
      cwd: b.cwd ?? moduleDir(b.module),
      ...(b.cgo ? { env: goEnv({ CGO_ENABLED: '1' }) } : {}),
      what: b.what,
      timeoutMs: b.timeoutMs ?? 90 * 60_000,
      lock: lockOf(b.installDir),
    },
  );
}

/** A tool built by {@link buildFromModule} into `<staging>/bin/<binary>`, then checked by its version. */
export interface CheckedModuleBuild extends Omit<ModuleBuild, 'out'> {
  /** Where the install is staged; the binary goes to `<staging>/bin/<binary>`. */
  staging: string;
  binary: string;
  /** The version it must report. */
  pinned: string;
  /** Arguments that make it print its version. */
  versionArgs: readonly string[];
  /** The version in that output, or null. */
  parse: (out: string) => string | null;
}

/**
 * Build one binary into the staging dir and refuse it unless it reports the pinned version: a build
 * of the wrong module version (a stale go.sum, a replace) fails the install, not the first start.
 */
export async function buildCheckedBinary(b: CheckedModuleBuild): Promise<void> {
  const { staging, binary, pinned, versionArgs, parse, ...build } = b;
  const bin = join(staging, 'bin');
  mkdirSync(bin, { recursive: true });
  await buildFromModule({ ...build, out: join(bin, binary) });
  const what = `${binary} ${versionArgs.join(' ')}`;
  const out = await run(join(bin, binary), [...versionArgs], { what, timeoutMs: 60_000 });
  const found = parse(out);
  if (found !== pinned)
    throw new Error(
      `${binary}: the built binary reports ${found ?? out.trim()}, expected ${pinned}`,
    );
}
