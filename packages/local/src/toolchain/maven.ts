import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cacheRoot } from './cache.ts';
import { CommandError, FetchError } from './errors.ts';
import { run, tryRun } from './exec.ts';
import { download, fetchText } from './fetch.ts';
import { progress } from './log.ts';

/** Maven Central, the only Maven registry Trellis reaches by default. */
export const MAVEN_CENTRAL = 'https://repo1.maven.org/maven2';

/** The maven-dependency-plugin used to copy a resolved classpath; pinned so that resolution is reproducible. */
export const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.8.1';

/** One Maven artefact. `ext` defaults to `jar`. */
export interface MavenCoordinates {
  groupId: string;
  artifactId: string;
  version: string;
  classifier?: string;
  ext?: string;
}

/** The Maven repository to use: `TRELLIS_MAVEN_REPO` (a mirror of Central), else Maven Central. */
export function mavenRepo(): string {
  const env = process.env.TRELLIS_MAVEN_REPO?.trim();
  return (env && env.length > 0 ? env : MAVEN_CENTRAL).replace(/\/+$/, '');
}

/** A human name for the registry in errors: `Maven Central`, or the mirror's URL. */
export function mavenRegistryName(repo = mavenRepo()): string {
  return repo === MAVEN_CENTRAL ? 'Maven Central' : `Maven repository ${repo}`;
}

const PART = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Throw a clear error naming the first bad field of `c`; repository paths are built from these. */
export function checkCoordinates(c: MavenCoordinates): void {
  const fields: [keyof MavenCoordinates, string | undefined][] = [
    ['groupId', c.groupId],
    ['artifactId', c.artifactId],
    ['version', c.version],
    ['classifier', c.classifier],
    ['ext', c.ext],
  ];
  for (const [field, value] of fields) {
    const optional = field === 'classifier' || field === 'ext';
    if (value === undefined && optional) continue;
    if (typeof value !== 'string' || !PART.test(value) || value.includes('..')) {
      throw new Error(
        `bad Maven coordinates: ${field} ${JSON.stringify(value)} must be letters, digits, '.', '_' or '-'`,
      );
    }
  }
}

/** `group:artifact:version[:classifier][@ext]`, for progress and errors. */
export function coordinatesLabel(c: MavenCoordinates): string {
  const ext = c.ext && c.ext !== 'jar' ? `@${c.ext}` : '';
  return `${c.groupId}:${c.artifactId}:${c.version}${c.classifier ? `:${c.classifier}` : ''}${ext}`;
}

/**
 * The URL of an artefact in a Maven 2 layout repository:
 * `<repo>/<group as path>/<artifact>/<version>/<artifact>-<version>[-<classifier>].<ext>`.
 */
export function mavenUrl(
  groupId: string,
  artifactId: string,
  version: string,
  opts: { classifier?: string; ext?: string; repo?: string } = {},
): string {
  const c: MavenCoordinates = {
    groupId,
    artifactId,
    version,
    classifier: opts.classifier,
    ext: opts.ext,
  };
  checkCoordinates(c);
  const repo = (opts.repo ?? mavenRepo()).replace(/\/+$/, '');
  const file = `${artifactId}-${version}${opts.classifier ? `-${opts.classifier}` : ''}.${opts.ext ?? 'jar'}`;
  return `${repo}/${groupId.split('.').join('/')}/${artifactId}/${version}/${file}`;
}

/**
 * The digest in a published `.sha1` file. Central's files hold the bare hex, some older ones
 * `<hex>  <file name>`; anything else is rejected rather than trusted.
 */
export function parseSha1File(text: string): string {
  const first = text.trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  if (!/^[0-9a-f]{40}$/.test(first))
    throw new Error(`not a SHA-1 checksum file: ${JSON.stringify(text.slice(0, 80))}`);
  return first;
}

/**
 * Download one artefact to `dest`, verified against the `.sha1` published next to it.
 * Throws FetchError naming the artefact and the registry when either file cannot be fetched or the
 * digest does not match.
 */
export async function downloadArtifact(
  c: MavenCoordinates,
  dest: string,
  what?: string,
): Promise<string> {
  const url = mavenUrl(c.groupId, c.artifactId, c.version, {
    classifier: c.classifier,
    ext: c.ext,
  });
  const label = what ?? coordinatesLabel(c);
  const registry = mavenRegistryName();
  let sha1: string;
  try {
    sha1 = parseSha1File(await fetchText(`${url}.sha1`, `${label} (.sha1)`, registry));
  } catch (err) {
    if (err instanceof FetchError) throw err;
    throw new FetchError(label, registry, `${url}.sha1: ${(err as Error).message}`);
  }
  await download(url, dest, { what: label, registry, sha1 });
  return dest;
}

/** A POM whose only purpose is to pull `deps` (with their runtime dependencies) through Maven. */
export function classpathPom(name: string, deps: readonly MavenCoordinates[]): string {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name))
    throw new Error(`bad classpath name ${JSON.stringify(name)}`);
  if (deps.length === 0) throw new Error(`classpath ${name}: no artefacts to resolve`);
  const lines = deps.map((d) => {
    checkCoordinates(d);
    const opt = [
      d.classifier ? `<classifier>${d.classifier}</classifier>` : '',
      d.ext && d.ext !== 'jar' ? `<type>${d.ext}</type>` : '',
    ].join('');
    return `    <dependency><groupId>${d.groupId}</groupId><artifactId>${d.artifactId}</artifactId><version>${d.version}</version>${opt}</dependency>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!-- Generated by Trellis to resolve a runtime classpath; not a build. -->',
    '<project xmlns="http://maven.apache.org/POM/4.0.0">',
    '  <modelVersion>4.0.0</modelVersion>',
    '  <groupId>dev.trellis.classpath</groupId>',
    `  <artifactId>${name}</artifactId>`,
    '  <version>1</version>',
    '  <packaging>pom</packaging>',
    '  <dependencies>',
    ...lines,
    '  </dependencies>',
    '</project>',
    '',
  ].join('\n');
}

/** A settings.xml that sends every request to `repo` (used only when TRELLIS_MAVEN_REPO is set). */
export function mirrorSettings(repo: string): string {
  return [
    '<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0">',
    '  <mirrors>',
    '    <mirror><id>trellis-mirror</id><mirrorOf>*</mirrorOf>',
    `      <url>${repo.replace(/&/g, '&amp;').replace(/</g, '&lt;')}</url></mirror>`,
    '  </mirrors>',
    '</settings>',
    '',
  ].join('\n');
}

/** The `mvn` to use (`TRELLIS_MVN`, else `mvn` on PATH) and its version, or null when there is none. */
export async function findMaven(): Promise<{ command: string; version: string } | null> {
  const command = process.env.TRELLIS_MVN ?? 'mvn';
  const out = await tryRun(command, ['--version'], { timeoutMs: 60_000 });
  if (out === null) return null;
  const m = /Apache Maven (\d+\.\d+\.\d+)/.exec(out);
  return { command, version: m?.[1] ?? 'unknown' };
}

export interface ResolveOptions {
  /** Short name of the classpath (used for the generated POM and in progress), e.g. `cassandra`. */
  name: string;
  /** The artefacts; each comes with its runtime dependencies. */
  artifacts: readonly MavenCoordinates[];
  /** The directory that receives the jars (created; must not hold other jars). */
  into: string;
  /** JAVA_HOME for Maven itself. */
  javaHome: string;
  /** @default 900_000 */
  timeoutMs?: number;
}

/**
 * Resolve `artifacts` and all their runtime dependencies into `into` (one flat directory of jars),
 * with the machine's Maven: a generated POM and `dependency:copy-dependencies`, checksums enforced.
 *
 * Why Maven rather than our own resolver: real POMs use parents, BOM imports, property interpolation,
 * exclusions and nearest-wins mediation; re-implementing that is where resolvers go wrong, and `mvn` is on
 * every machine of this project's kind (Debian package `maven`). Downloads land in
 * `<cache>/maven-repo`, so a second resolution is offline-fast. Returns the jar file names.
 */
export async function resolveClasspath(opts: ResolveOptions): Promise<string[]> {
  const mvn = await findMaven();
  if (!mvn) {
    throw new Error(
      `cannot resolve the ${opts.name} classpath: Maven (mvn) is not on PATH. ` +
        'Install it (Debian: apt-get install -y maven) or point TRELLIS_MVN at an mvn binary.',
    );
  }
  const work = `${opts.into}.mvn`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  mkdirSync(opts.into, { recursive: true });
  writeFileSync(join(work, 'pom.xml'), classpathPom(opts.name, opts.artifacts));
  const repo = mavenRepo();
  const args = [
    '-B',
    '--no-transfer-progress',
    '--strict-checksums',
    '-f',
    join(work, 'pom.xml'),
    `-Dmaven.repo.local=${join(cacheRoot(), 'maven-repo')}`,
  ];
  if (repo !== MAVEN_CENTRAL) {
    writeFileSync(join(work, 'settings.xml'), mirrorSettings(repo));
    args.push('-s', join(work, 'settings.xml'));
  }
  args.push(
    `${DEPENDENCY_PLUGIN}:copy-dependencies`,
    `-DoutputDirectory=${opts.into}`,
    '-DincludeScope=runtime',
    '-DoverWriteIfNewer=true',
  );
  const label = opts.artifacts.map(coordinatesLabel).join(', ');
  progress(`resolving ${opts.name} classpath with Maven ${mvn.version} (${label})`);
  const started = Date.now();
  const beat = setInterval(
    () =>
      progress(
        `  still resolving ${opts.name} classpath (${Math.round((Date.now() - started) / 1000)} s)`,
      ),
    10_000,
  );
  try {
    await run(mvn.command, args, {
      what: `mvn dependency:copy-dependencies for ${opts.name}`,
      env: { ...process.env, JAVA_HOME: opts.javaHome },
      timeoutMs: opts.timeoutMs ?? 900_000,
    });
  } catch (err) {
    const out = err instanceof CommandError ? err.output : '';
    const missing = /Could not (?:find|transfer) artifact (\S+)/.exec(out);
    if (missing)
      throw new FetchError(missing[1] ?? label, mavenRegistryName(repo), firstError(out));
    if (/Could not resolve|Could not transfer|Connect|timed out/i.test(out))
      throw new FetchError(label, mavenRegistryName(repo), firstError(out));
    throw err;
  } finally {
    clearInterval(beat);
    rmSync(work, { recursive: true, force: true });
  }
  const jars = readdirSync(opts.into).filter((f) => f.endsWith('.jar'));
  for (const a of opts.artifacts) {
    const want = `${a.artifactId}-${a.version}${a.classifier ? `-${a.classifier}` : ''}.jar`;
    if (!existsSync(join(opts.into, want)))
      throw new Error(`resolved ${opts.name} classpath lacks ${want} (Maven reported success)`);
  }
  progress(
    `${opts.name} classpath: ${jars.length} jars in ${Math.round((Date.now() - started) / 1000)} s`,
  );
  return jars.sort();
}

function firstError(out: string): string {
  const line =
    out.split('\n').find((l) => l.includes('[ERROR]')) ?? out.split('\n').slice(-3).join(' ');
  return line
    .replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '') // ANSI colours
    .replace('[ERROR]', '')
    .trim()
    .slice(0, 600);
}
