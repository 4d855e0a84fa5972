/**
 * Jaeger (v2: an OpenTelemetry Collector distribution with an in-memory trace store and the query API),
 * built from source from its Go module: the project publishes binaries only on GitHub, and the module
 * proxy serves the source. Built from our module packages/local/go-kube/tracing, which also holds the
 * stack's OpenTelemetry Collector (otelcol.ts): Jaeger v1.75.0 pins collector v0.139.0, the collector
 * distribution is on v0.139.0 too, so the two builds share one module graph and Go's build cache.
 * The web UI is not in the module (its assets are a placeholder); the query API is (ADR 0023).
 */
import { join } from 'node:path';
import { installAtomically, isInstalled, toolDir } from './cache.ts';
import { checkVersionedBinary } from './check.ts';
import { GO_PROXY } from './go.ts';
import { buildCheckedBinary, moduleDir } from './gomodule.ts';
import type { Tool, ToolCheck } from './spec.ts';

// Pinned in packages/local/go-kube/tracing/go.mod too; a bump changes both (and otelcol.ts's collector
// version, which must stay the one this Jaeger builds on). Module v1.75.0 is Jaeger v2.12.0.
const PINNED = '1.75.0';
const MINIMUM = '1.75.0';
const PACKAGE = 'github.com/jaegertracing/jaeger/cmd/jaeger';
/** The module that holds Jaeger and the collector distribution (packages/local/go-kube/tracing). */
export const TRACING_MODULE = 'tracing';

/** The Jaeger binary of the pinned install (`<cache>/tools/jaeger/<version>/bin/jaeger`). */
export function jaegerBinary(version = PINNED): string {
  return join(toolDir('jaeger', version), 'bin', 'jaeger');
}

/**
 * Parse `jaeger version` output (`{"gitCommit":"","gitVersion":"v1.75.0","buildDate":""}`): the
 * version we stamp into the build with `-ldflags -X`.
 */
export function parseJaegerVersion(out: string): string | null {
  return /"gitVersion":"v(\d+\.\d+\.\d+)"/.exec(out)?.[1] ?? null;
}

function install(staging: string, dir: string): Promise<void> {
  return buildCheckedBinary({
    module: TRACING_MODULE,
    packages: [PACKAGE],
    staging,
    binary: 'jaeger',
    pinned: PINNED,
    versionArgs: ['version'],
    parse: parseJaegerVersion,
    // Jaeger's own Makefile stamps its version this way (scripts/makefiles/BuildInfo.mk).
    ldflags: `-X github.com/jaegertracing/jaeger/internal/version.latestVersion=v${PINNED}`,
    what: `building Jaeger ${PINNED}`,
    installDir: dir,
  });
}

/** Jaeger, the stack's trace store and query API (ADR 0023). */
export const jaeger: Tool = {
  name: 'jaeger',
  pinned: PINNED,
  minimum: MINIMUM,
  source: `${GO_PROXY} ${PACKAGE}@v${PINNED} (built from ${moduleDir(TRACING_MODULE)})`,
  async ensure(): Promise<string> {
    const dir = toolDir('jaeger', PINNED);
    if (!isInstalled(dir)) await installAtomically(dir, (staging) => install(staging, dir));
    return jaegerBinary();
  },
  async check(): Promise<ToolCheck> {
    return checkVersionedBinary(this, {
      dir: toolDir('jaeger', PINNED),
      bin: jaegerBinary(),
      args: ['version'],
      parse: parseJaegerVersion,
    });
  },
};
