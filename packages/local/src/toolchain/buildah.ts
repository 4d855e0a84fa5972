import { chmodSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot, installAtomically, isInstalled, toolDir } from './cache.ts';
import { toolBase } from './check.ts';
import { resolvePackages } from './debian-batch.ts';
import { aptCandidate, DEBIAN, downloadPackages, unpackDebs } from './debian.ts';
import { FetchError } from './errors.ts';
import { run, tryRun } from './exec.ts';
import { progress } from './log.ts';
import { compareVersions, type Tool, type ToolCheck } from './spec.ts';

// Debian bookworm ships buildah 1.28.2. `--timestamp` (reproducible layers and config), `--pull=never`
// and the oci-archive transport are all the image build needs.
const PINNED = '1.28.2';
const MINIMUM = '1.28.0';
// buildah and the shared libraries a minimal Debian lacks (ldd checks the rest). Not `uidmap`: the
// build runs in a user namespace we make with `unshare --map-root-user`, with no subordinate ids.
// Not crun/runc: the Containerfiles have no RUN step, so nothing is ever executed in a container.
const PACKAGES = [
  'buildah',
  'libgpgme11',
  'libassuan0',
  'libgpg-error0',
  'libdevmapper1.02.1',
  'libseccomp2',
] as const;

/** The upstream part of a Debian version: `1.28.2+ds1-3+deb12u1+b3` → `1.28.2`. */
export function buildahUpstream(debianVersion: string): string {
  return debianVersion.replace(/^\d+:/, '').replace(/[+~-].*$/, '');
}

/** The wrapper that runs buildah with its libraries and configuration; what `ensure()` returns. */
export function buildahWrapperIn(dir: string): string {
  return join(dir, 'bin', 'buildah');
}

// containers/image reads this instead of /etc/containers/registries.conf: no search registries, so a
// short name never resolves to a registry on the network.
const REGISTRIES_CONF = `unqualified-search-registries = []
short-name-mode = "enforcing"
`;

function libraryDirs(dir: string): string[] {
  const out: string[] = [];
  for (const base of ['lib', join('usr', 'lib')]) {
    const root = join(dir, base);
    if (!existsSync(root)) continue;
    for (const d of readdirSync(root)) if (d.endsWith('-linux-gnu')) out.push(join(root, d));
  }
  return out;
}

async function install(version: string, staging: string): Promise<void> {
  progress(`downloading buildah ${version} (${PACKAGES.join(', ')}) with apt-get download`);
  // Each library at the candidate of the moment; the cache is keyed by buildah's version.
  const pkgs = await resolvePackages(PACKAGES);
  const buildah = pkgs.find((p) => p.name === 'buildah');
  if (buildah?.version !== version)
    throw new Error(`buildah: apt's candidate moved from ${version} to ${buildah?.version}`);
  await unpackDebs(await downloadPackages(pkgs), staging);
  const real = join(staging, 'usr', 'bin', 'buildah');
  if (!existsSync(real)) throw new Error(`buildah ${version}: the package has no usr/bin/buildah`);
  mkdirSync(join(staging, 'etc', 'containers'), { recursive: true });
  writeFileSync(join(staging, 'etc', 'containers', 'registries.conf'), REGISTRIES_CONF);
  const libs = libraryDirs(staging);
  const ldd = await run('ldd', [real], {
    what: `ldd ${real}`,
    env: { ...process.env, LD_LIBRARY_PATH: libs.join(':') },
    timeoutMs: 30_000,
  });
  const missing = ldd
    .split('\n')
    .filter((l) => l.includes('not found'))
    .map((l) => l.trim().split(/\s+/)[0]);
  if (missing.length > 0)
    throw new Error(
      `buildah ${version} needs shared libraries that are missing: ${missing.join(', ')}`,
    );
  // Paths are those of the final directory: installAtomically renames staging into it.
  const dir = toolDir('buildah', version);
  const finalLibs = libs.map((l) => join(dir, l.slice(staging.length + 1)));
  mkdirSync(join(staging, 'bin'));
  const wrapper = buildahWrapperIn(staging);
  writeFileSync(
    wrapper,
    [
      '#!/bin/sh',
      `# buildah ${version} from Debian, unpacked per user by Trellis (packages/local/src/toolchain/buildah.ts).`,
      `export LD_LIBRARY_PATH="${finalLibs.join(':')}\${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"`,
      `export CONTAINERS_REGISTRIES_CONF="${join(dir, 'etc', 'containers', 'registries.conf')}"`,
      `exec "${join(dir, 'usr', 'bin', 'buildah')}" "$@"`,
      '',
    ].join('\n'),
  );
  chmodSync(wrapper, 0o755);
}

/** Completed installs in the cache, newest Debian version first. */
function installedVersions(): string[] {
  const root = join(cacheRoot(), 'tools', 'buildah');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((v) => !v.includes('.staging-') && !v.endsWith('.lock') && isInstalled(join(root, v)))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
}

async function ensureBuildah(): Promise<{ bin: string; version: string }> {
  const version = await aptCandidate('buildah');
  // Offline or not Debian: what is already installed.
  const have = installedVersions()[0];
  if (!version && have) return { bin: buildahWrapperIn(toolDir('buildah', have)), version: have };
  if (!version) {
    throw new FetchError(
      `buildah ${PINNED}`,
      DEBIAN,
      'apt-cache has no candidate for package buildah (run apt-get update, on Debian bookworm)',
    );
  }
  if (compareVersions(buildahUpstream(version), MINIMUM) < 0)
    throw new Error(`buildah: apt offers ${version}, below the minimum ${MINIMUM}`);
  const dir = toolDir('buildah', version);
  if (!isInstalled(dir)) await installAtomically(dir, (staging) => install(version, staging));
  return { bin: buildahWrapperIn(dir), version };
}

let resolved: { bin: string; version: string } | null = null;

/** The buildah wrapper and its Debian version, installed when missing. */
export async function buildahInstall(): Promise<{ bin: string; version: string }> {
  if (resolved && existsSync(resolved.bin)) return resolved;
  resolved = await ensureBuildah();
  return resolved;
}

/**
 * buildah from Debian, unpacked per user (`apt-get download` + `dpkg -x`) into the tool cache keyed by
 * its Debian version, with its libraries beside it: builds OCI images from Containerfiles with no
 * daemon and no root (docs/adr/0014-images-without-a-daemon.md).
 */
export const buildah: Tool = {
  name: 'buildah',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${DEBIAN} buildah ${PINNED} (Debian bookworm)`,
  async ensure(): Promise<string> {
    return (await buildahInstall()).bin;
  },
  async check(): Promise<ToolCheck> {
    const base = toolBase(this);
    const version = installedVersions()[0];
    if (!version)
      return { ...base, found: null, location: null, runs: false, problem: 'not installed' };
    const dir = toolDir('buildah', version);
    const bin = buildahWrapperIn(dir);
    const out = await tryRun(bin, ['--version']);
    const found = out ? (/buildah version (\S+)/.exec(out)?.[1] ?? null) : null;
    return {
      ...base,
      found: found ?? buildahUpstream(version),
      location: bin,
      runs: found !== null,
      ...(found === null
        ? { problem: 'buildah --version failed (missing shared libraries?)' }
        : {}),
    };
  },
};
