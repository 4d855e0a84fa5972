import { describe, expect, it } from 'vitest';
import {
  countOf,
  diffHistograms,
  parseDetailedStats,
  quantile,
  summariseEnvoy,
} from '../src/envoy-stats.ts';

/** The shape Envoy 1.40 answers to /stats?format=json&histogram_buckets=detailed (recorded here). */
function scrape(bins: Record<string, [number, number][]>): unknown {
  return {
    stats: [
      { name: 'http.inbound_http.downstream_rq_timeout', value: 0 },
      {
        histograms: {
          supported_percentiles: [0, 25, 50, 75, 90, 95, 99, 99.5, 99.9, 100],
          details: Object.entries(bins).map(([name, b]) => ({
            name,
            totals: b.map(([lower, count]) => ({ lower_bound: lower, width: 0.1, count })),
            intervals: [],
            percentiles: [],
          })),
        },
      },
    ],
  };
}

describe('Envoy detailed histograms', () => {
  const before = parseDetailedStats(
    scrape({
      'http.inbound_http.downstream_rq_time': [
        [0, 10],
        [1, 5],
      ],
      'cluster.app_http.upstream_rq_time': [[0, 15]],
      'http.admin.downstream_rq_time': [[0, 3]],
      'cluster.upstream.external.upstream_rq_time': [[0, 1]],
    }),
  );
  const after = parseDetailedStats(
    scrape({
      'http.inbound_http.downstream_rq_time': [
        [0, 60],
        [1, 45],
        [3, 5],
      ],
      'cluster.app_http.upstream_rq_time': [
        [0, 105],
        [2, 10],
      ],
    }),
  );

  it('keeps the request-time histograms only (no admin listener, no sub-stat)', () => {
    expect(Object.keys(before).sort()).toEqual([
      'cluster.app_http.upstream_rq_time',
      'http.inbound_http.downstream_rq_time',
    ]);
  });

  it('subtracts the scrape before from the scrape after, bin by bin', () => {
    const d = diffHistograms(before, after);
    expect(d['http.inbound_http.downstream_rq_time']).toEqual([
      { lower: 0, width: 0.1, count: 50 },
      { lower: 1, width: 0.1, count: 40 },
      { lower: 3, width: 0.1, count: 5 },
    ]);
    expect(countOf(d['cluster.app_http.upstream_rq_time'] ?? [])).toBe(100);
  });

  it('takes quantiles at whole milliseconds (how Envoy records request times)', () => {
    const d = diffHistograms(before, after)['http.inbound_http.downstream_rq_time'] ?? [];
    expect(quantile(d, 0.5)).toBe(0);
    expect(quantile(d, 0.9)).toBe(1);
    expect(quantile(d, 0.99)).toBe(3);
    expect(quantile([], 0.5)).toBeNull();
    // Wider bins interpolate.
    expect(quantile([{ lower: 10, width: 10, count: 10 }], 0.5)).toBe(15);
  });

  it('summarises one Envoy, busiest stat first', () => {
    const s = summariseEnvoy('orders-api', before, after);
    expect(s.stats.map((x) => [x.stat, x.count, x.p50, x.p99])).toEqual([
      ['cluster.app_http.upstream_rq_time', 100, 0, 2],
      ['http.inbound_http.downstream_rq_time', 95, 0, 3],
    ]);
  });
});
