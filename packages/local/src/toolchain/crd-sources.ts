/**
 * Where the CRD set's sources come from (crds.ts assembles them): Go modules fetched with
 * `go mod download`, cert-manager's chart rendered from its template, and Strimzi's CRDs generated
 * by its own generator from Maven Central.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { STRIMZI, type GoModulePin, type StrimziRun } from './crd-pins.ts';
import { CommandError, FetchError } from './errors.ts';
import { run } from './exec.ts';
import { GO_PROXY, goEnv, type GoToolchain } from './go.ts';
import { findJdk, findJdks, javaHome, JAVA_MINIMUM } from './java.ts';
import { progress } from './log.ts';
import {
  coordinatesLabel,
  downloadArtifact,
  resolveClasspath,
  type MavenCoordinates,
} from './maven.ts';

/**
 * `go mod download -json <module>@<version>` into the Go module cache; returns the module's directory there.
 * A version the proxy refuses becomes a FetchError naming the module and the Go module proxy.
 */
export async function goModDownload(
  pin: GoModulePin,
  opts: { go: GoToolchain; cwd: string },
): Promise<string> {
  const ref = `${pin.module}@${pin.version}`;
  let out: string;
  try {
    out = await run(opts.go.bin, ['mod', 'download', '-json', ref], {
      what: `go mod download ${ref}`,
      cwd: opts.cwd,
      env: goEnv({ GOFLAGS: '-mod=mod' }),
      timeoutMs: 900_000,
    });
  } catch (err) {
    if (err instanceof CommandError) {
      const reason = parseGoDownload(err.output).error;
      if (reason) throw new FetchError(`Go module ${ref}`, GO_PROXY, reason);
    }
    throw err;
  }
  const { dir, error } = parseGoDownload(out);
  if (error) throw new FetchError(`Go module ${ref}`, GO_PROXY, error);
  if (!dir || !existsSync(dir))
    throw new Error(`go mod download ${ref} reported no module directory: ${out.slice(0, 300)}`);
  return dir;
}

/** `Dir` and `Error` of `go mod download -json` output (a JSON object, possibly after other lines). */
export function parseGoDownload(output: string): { dir?: string; error?: string } {
  const start = output.indexOf('{');
  const end = output.lastIndexOf('}');
  if (start < 0 || end < start) return {};
  try {
    const j = JSON.parse(output.slice(start, end + 1)) as { Dir?: unknown; Error?: unknown };
    return {
      ...(typeof j.Dir === 'string' ? { dir: j.Dir } : {}),
      ...(typeof j.Error === 'string' ? { error: j.Error.split('\n')[0] } : {}),
    };
  } catch {
    return {};
  }
}

/**
 * Copy a tree out of the module cache into writable files and folders (the module cache is read-only, and
 * a copy that kept its modes could not be removed by a later install).
 */
export function copyTree(from: string, to: string): void {
  mkdirSync(to, { recursive: true });
  for (const e of readdirSync(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory()) copyTree(src, dst);
    else if (e.isFile()) {
      copyFileSync(src, dst);
      chmodSync(dst, 0o644);
    }
  }
}

/** The `.yaml` files of a directory, sorted. */
export function yamlFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml')
    .sort();
}

/**
 * cert-manager's chart has `Chart.template.yaml`, which its release tool turns into `Chart.yaml` with the
 * version. Do the same, and fail on any placeholder left, so a changed template is noticed.
 */
export function renderCertManagerChartYaml(template: string, version: string): string {
  const out = template
    .replace(/^version: v0\.0\.0$/m, `version: ${version}`)
    .replace(/^appVersion: v0\.0\.0$/m, `appVersion: ${version}`)
    .replace('{{IS_PRERELEASE}}', 'false');
  if (!out.includes(`\nversion: ${version}\n`) || !out.includes(`\nappVersion: ${version}`))
    throw new Error(
      `cert-manager Chart.template.yaml: no "version: v0.0.0" / "appVersion: v0.0.0" line to stamp`,
    );
  const left = /\{\{[A-Z_]+\}\}/.exec(out);
  if (left) throw new Error(`cert-manager Chart.template.yaml: placeholder ${left[0]} not filled`);
  return out;
}

/** The `java` of a JDK that runs Strimzi's generator, or an error naming what was found. */
function generatorJava(): string {
  const jdk = findJdk(STRIMZI.javaMinimum);
  if (jdk) return join(jdk.home, 'bin', 'java');
  const found = findJdks().map((j) => `${j.version} at ${j.home}`);
  throw new Error(
    `${coordinatesLabel(STRIMZI.generator)} needs a JDK ≥ ${STRIMZI.javaMinimum} to generate the Strimzi CRDs ` +
      `(found: ${found.join(', ') || 'none'}); install one or set TRELLIS_JAVA_HOME to it`,
  );
}

/** The arguments of one generator run, writing into `outDir` (as api-0.50.1.pom's exec executions). */
export function strimziGeneratorArgs(r: StrimziRun, classpath: string, outDir: string): string[] {
  return [
    '-cp',
    classpath,
    STRIMZI.generatorMain,
    ...STRIMZI.labels.flatMap((l) => ['--label', l]),
    '--target-kube',
    '1.16+',
    '--crd-api-version',
    'v1',
    '--api-versions',
    r.apiVersions,
    ...(r.describeApiVersions ? ['--describe-api-versions', r.describeApiVersions] : []),
    '--storage-version',
    r.storageVersion,
    '--yaml',
    ...Object.entries(r.classes).map(([cls, file]) => `${cls}=${join(outDir, file)}`),
  ];
}

/** Generate the Strimzi CRDs into `into` with its own generator (every run of `STRIMZI.runs`), working in `work`. */
export async function generateStrimzi(into: string, work: string): Promise<void> {
  const java = generatorJava();
  const lib = join(work, 'lib');
  await resolveClasspath({
    name: 'strimzi-api',
    artifacts: [STRIMZI.api as MavenCoordinates],
    into: lib,
    javaHome: javaHome(JAVA_MINIMUM),
  });
  const generator = join(work, `crd-generator-${STRIMZI.generator.version}.jar`);
  await downloadArtifact(STRIMZI.generator as MavenCoordinates, generator);
  // The api's own dependencies come first, so the fabric8 model its classes were built against wins over
  // any copy inside the shaded generator.
  const classpath = `${join(lib, '*')}:${generator}`;
  mkdirSync(into, { recursive: true });
  for (const r of STRIMZI.runs) {
    const kinds = Object.keys(r.classes).map((c) => c.slice(c.lastIndexOf('.') + 1));
    progress(`  generating Strimzi CRDs ${kinds.join(', ')}`);
    await run(java, strimziGeneratorArgs(r, classpath, into), {
      what: `${coordinatesLabel(STRIMZI.generator)} on ${coordinatesLabel(STRIMZI.api)} (${kinds.join(', ')})`,
      timeoutMs: 300_000,
    });
  }
}
