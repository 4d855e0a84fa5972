/**
 * Envoy's own timing, from its admin endpoint: `GET /stats?format=json&histogram_buckets=detailed`
 * returns, per histogram, the bins of everything recorded so far (`totals`: lower_bound, width,
 * count). Two scrapes, before and after measuring, give the run's own distribution bin by bin.
 *
 * Two limits a reader must know (both checked against Envoy 1.40 on this machine):
 * - `downstream_rq_time` and `upstream_rq_time` are recorded in whole milliseconds, so sub-millisecond
 *   overhead shows up as 0 or 1 ms steps; the k6 paths give the finer figure.
 * - histograms are merged on the stats flush (bootstrap `stats_flush_interval`, default 5 s), so a
 *   scrape sees samples up to the last flush; the runner scrapes one flush after each mark. The
 *   compiled sidecars set `stats_flush_on_admin` instead (ADR 0019): the scrape itself flushes, so
 *   it sees every sample up to that moment, and the wait only leaves a few more seconds out.
 * Admin API: https://www.envoyproxy.io/docs/envoy/latest/operations/admin#get--stats
 */
import { runInPod, type PodLaunch } from '@trellis/local/pods';

/** One bin of a detailed histogram. */
export interface Bin {
  lower: number;
  width: number;
  count: number;
}

/** The histograms of one scrape, by stat name. */
export type Histograms = Record<string, Bin[]>;

/** Timing stats worth scraping: request time as the listener saw it, and as the upstream took it. */
export const TIMING_STATS = /^(http\.[^.]+\.downstream_rq_time|cluster\.[^.]+\.upstream_rq_time)$/;

interface DetailedJson {
  stats?: {
    histograms?: {
      details?: {
        name?: string;
        totals?: { lower_bound: number; width: number; count: number }[];
      }[];
    };
  }[];
}

/** Parse the JSON of `/stats?format=json&histogram_buckets=detailed`, keeping names `filter` matches. */
export function parseDetailedStats(json: unknown, filter: RegExp = TIMING_STATS): Histograms {
  const out: Histograms = {};
  for (const s of (json as DetailedJson).stats ?? []) {
    for (const d of s.histograms?.details ?? []) {
      if (!d.name || !filter.test(d.name) || d.name.startsWith('http.admin.')) continue;
      out[d.name] = (d.totals ?? []).map((b) => ({
        lower: b.lower_bound,
        width: b.width,
        count: b.count,
      }));
    }
  }
  return out;
}

/** Fetch and parse one Envoy's timing histograms (bounded by a timeout). */
export async function scrapeEnvoy(
  adminUrl: string,
  timeoutMs = 5_000,
  pod?: PodLaunch,
): Promise<Histograms> {
  const url = `${adminUrl}/stats?format=json&histogram_buckets=detailed&filter=${encodeURIComponent('rq_time$')}`;
  if (pod !== undefined) {
    // A pod sidecar's admin listens on the pod's loopback: fetch it from inside, as the pod's user.
    const r = await runInPod(pod, process.execPath, ['-e', IN_POD_FETCH, url, String(timeoutMs)], {
      timeoutMs: timeoutMs + 10_000,
    });
    if (r.code !== 0)
      throw new Error(`${adminUrl}/stats from inside ${pod.netns}: ${r.stderr.trim()}`);
    return parseDetailedStats(JSON.parse(r.stdout) as unknown);
  }
  const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  if (res.status !== 200) throw new Error(`${adminUrl}/stats answered ${res.status}`);
  return parseDetailedStats(await res.json());
}

/** `node -e` program: GET argv[1] (timeout argv[2] ms), print the body; exit 1 unless 200. */
const IN_POD_FETCH = `fetch(process.argv[1], { signal: AbortSignal.timeout(Number(process.argv[2])) })
  .then(async (r) => { if (r.status !== 200) throw new Error('answered ' + r.status); process.stdout.write(await r.text()); })
  .catch((e) => { process.stderr.write(String(e.message)); process.exit(1); });`;

/** What was recorded between two scrapes: bin counts after minus before. */
export function diffHistograms(before: Histograms, after: Histograms): Histograms {
  const out: Histograms = {};
  for (const [name, bins] of Object.entries(after)) {
    const prev = new Map((before[name] ?? []).map((b) => [`${b.lower}/${b.width}`, b.count]));
    const diff = bins
      .map((b) => ({ ...b, count: b.count - (prev.get(`${b.lower}/${b.width}`) ?? 0) }))
      .filter((b) => b.count > 0);
    if (diff.length > 0) out[name] = diff;
  }
  return out;
}

/** Total samples in a histogram. */
export function countOf(bins: readonly Bin[]): number {
  return bins.reduce((s, b) => s + b.count, 0);
}

/**
 * The q-quantile (0–1) of a binned distribution, interpolated linearly inside its bin. Values
 * recorded as whole milliseconds sit at a bin's lower bound, so a bin holding only them yields it.
 */
export function quantile(bins: readonly Bin[], q: number): number | null {
  const sorted = [...bins].sort((a, b) => a.lower - b.lower);
  const n = countOf(sorted);
  if (n === 0) return null;
  const rank = q * n;
  let seen = 0;
  for (const b of sorted) {
    if (seen + b.count >= rank) {
      const within = b.count > 0 ? Math.max(0, rank - seen) / b.count : 0;
      // Whole-ms recordings: a bin [k, k+0.1) means exactly k.
      return b.width <= 0.1 + 1e-9 && Number.isInteger(b.lower)
        ? b.lower
        : b.lower + within * b.width;
    }
    seen += b.count;
  }
  const last = sorted[sorted.length - 1];
  return last ? last.lower + last.width : null;
}

/** One Envoy's timing over the measured window. */
export interface EnvoyTiming {
  name: string;
  /** Stat name → samples, p50, p99 (ms). */
  stats: { stat: string; count: number; p50: number | null; p99: number | null }[];
  /** Set when the scrape failed. */
  error?: string;
}

/** Summarise the window between two scrapes of one Envoy. */
export function summariseEnvoy(name: string, before: Histograms, after: Histograms): EnvoyTiming {
  const d = diffHistograms(before, after);
  return {
    name,
    stats: Object.entries(d)
      .map(([stat, bins]) => ({
        stat,
        count: countOf(bins),
        p50: quantile(bins, 0.5),
        p99: quantile(bins, 0.99),
      }))
      .sort((a, b) => b.count - a.count || a.stat.localeCompare(b.stat)),
  };
}
