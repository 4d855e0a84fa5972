/** What `doctor` reports for one component. */
export interface ToolCheck {
  name: string;
  /** The version Trellis pins and installs. */
  pinned: string;
  /** The lowest version Trellis accepts (e.g. Envoy 1.39, Cassandra 5.0.7). */
  minimum: string;
  /** The version found installed, or null when missing. */
  found: string | null;
  /** Where it is: a binary path or an install home. */
  location: string | null;
  /** True when the installed component actually ran (`--version` or an equivalent smoke check). */
  runs: boolean;
  /** Where it comes from, e.g. `Maven Central org.apache.kafka:kafka_2.13:4.1.1`. */
  source: string;
  /** Why it is not usable, when it is not. */
  problem?: string;
}

/** One pinned component of the toolchain. */
export interface Tool {
  readonly name: string;
  readonly pinned: string;
  readonly minimum: string;
  readonly source: string;
  /** Install when missing (idempotent, atomic, with progress) and return its location. */
  ensure(): Promise<string>;
  /** Report what is installed, installing nothing. */
  check(): Promise<ToolCheck>;
}

/** Compare dotted versions numerically (`1.39.3` vs `1.40.0`); non-numeric suffixes are ignored. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => Number.parseInt(x, 10));
  const pb = b.split(/[.+-]/).map((x) => Number.parseInt(x, 10));
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number.isNaN(pa[i] ?? 0) ? 0 : (pa[i] ?? 0);
    const y = Number.isNaN(pb[i] ?? 0) ? 0 : (pb[i] ?? 0);
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}
