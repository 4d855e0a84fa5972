import { accessSync, constants } from 'node:fs';

/** A bad environment variable: the message always names the variable and what is wrong with it. */
export class ConfigError extends Error {
  readonly variable: string;

  constructor(variable: string, problem: string) {
    super(`invalid configuration: ${variable} ${problem}`);
    this.name = 'ConfigError';
    this.variable = variable;
  }
}

/** `host:port` with a port in 1..65535; IPv6 hosts in brackets (`[::1]:9042`). */
const HOST_PORT = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/;

/** The variable names of an environment type `E` (one derived from a service's env schema). */
export type EnvName<E> = keyof E & string;

/**
 * Typed, validated reads of `process.env`-like records. Every failure throws a {@link ConfigError}
 * naming the variable, so a service refuses to start with a clear message instead of half-working.
 * `E` is the environment's type, derived from the service's env schema (env-schema.ts): only the
 * names it declares can be read, so the loader and the schema cannot drift apart.
 */
export class Env<E = Record<string, string | undefined>> {
  private readonly vars: Readonly<Record<string, string | undefined>>;

  constructor(vars: Readonly<Record<string, string | undefined>>) {
    this.vars = vars;
  }

  /** The trimmed value, or undefined when unset or blank. */
  optional(name: EnvName<E>): string | undefined {
    const v = this.vars[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  }

  /** A required string, or `fallback` when given and the variable is unset. */
  string(name: EnvName<E>, fallback?: string): string {
    const v = this.optional(name) ?? fallback;
    if (v === undefined) throw new ConfigError(name, 'is required but not set');
    return v;
  }

  /** An integer within `[min, max]`. */
  int(name: EnvName<E>, fallback: number, min: number, max: number): number {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    if (!/^-?\d+$/.test(raw)) throw new ConfigError(name, `must be an integer, got "${raw}"`);
    const n = Number.parseInt(raw, 10);
    if (n < min || n > max)
      throw new ConfigError(name, `must be between ${min} and ${max}, got ${n}`);
    return n;
  }

  /** One of the allowed values. */
  oneOf<T extends string>(name: EnvName<E>, allowed: readonly T[], fallback: T): T {
    const raw = this.optional(name);
    if (raw === undefined) return fallback;
    if (!(allowed as readonly string[]).includes(raw)) {
      throw new ConfigError(name, `must be one of ${allowed.join(', ')}, got "${raw}"`);
    }
    return raw as T;
  }

  /** A comma-separated list of `host:port` addresses (at least one when required). */
  hostPorts(name: EnvName<E>, fallback?: readonly string[]): string[] {
    const raw = this.optional(name);
    if (raw === undefined) {
      if (fallback) return [...fallback];
      throw new ConfigError(name, 'is required but not set (a comma-separated list of host:port)');
    }
    const items = raw.split(',').map((s) => s.trim());
    for (const item of items) checkHostPort(name, item);
    return items;
  }

  /** A single optional `host:port`. */
  optionalHostPort(name: EnvName<E>): string | undefined {
    const raw = this.optional(name);
    if (raw !== undefined) checkHostPort(name, raw);
    return raw;
  }

  /** An optional path to a file that must exist and be readable now. */
  optionalFile(name: EnvName<E>): string | undefined {
    const path = this.optional(name);
    if (path === undefined) return undefined;
    try {
      accessSync(path, constants.R_OK);
    } catch {
      throw new ConfigError(name, `names a file that does not exist or is not readable: ${path}`);
    }
    return path;
  }

  /** An HTTP header name (lower-cased, as Node presents incoming headers). */
  headerName(name: EnvName<E>, fallback: string): string {
    const v = this.string(name, fallback).toLowerCase();
    if (!/^[a-z0-9!#$%&'*+.^_`|~-]+$/.test(v)) {
      throw new ConfigError(name, `must be an HTTP header name, got "${v}"`);
    }
    return v;
  }
}

function checkHostPort(name: string, item: string): void {
  const m = HOST_PORT.exec(item);
  const port = m ? Number(m[2]) : 0;
  if (!m || port < 1 || port > 65_535) {
    throw new ConfigError(name, `must be host:port (e.g. 127.0.0.1:9042), got "${item}"`);
  }
}

/** Split `host:port` (validated by {@link Env.hostPorts}) into its parts, unbracketing IPv6. */
export function splitHostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  return { host: addr.slice(0, i).replace(/^\[(.*)\]$/, '$1'), port: Number(addr.slice(i + 1)) };
}
