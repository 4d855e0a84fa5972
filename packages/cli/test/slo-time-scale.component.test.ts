/**
 * The SLO rules at a test stack's time scale (ADR 0025), under Prometheus's own rule engine. Scaling
 * divides every window and `for` by the factor, so series sampled the factor times more often must
 * make the scaled rules fire and clear at the production times divided by the factor, to the
 * evaluation. The scenarios are slo-rules.component.test.ts's (c) and (d), whose production times are
 * hand-computed there; at factor 30 a minute becomes 2 s:
 *
 * (c) 35 % of requests over 5 ms from sample 360 to 420: production pages at 385m and clears at 423m,
 *     so the scaled page (2m/10s) fires at 770 s and clears at 846 s; the tickets (48m/4m, 2h24m/12m)
 *     from 742 s / 788 s until 1060 s / 1540 s;
 * (d) 1,100 rps against the 1,000 promised: production's load ticket at 20m (5m rate + 15m `for`),
 *     scaled at 40 s (10 s rate + 30 s `for`).
 *
 * A copy expecting the page one evaluation (2 s) early makes promtool fail.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensurePrometheus } from '@trellis/local/toolchain';
import {
  compileSloRules,
  parseModel,
  scaledBurnWindows,
  sloAlerts,
  type AlertingRule,
  type BoundModel,
} from '@trellis/policy';
import { bindOrThrow } from '@trellis/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'trellis-slo-scaled-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const FACTOR = 30;
/** One production minute at this scale, in seconds. */
const minute = 60 / FACTOR;
const at = (productionMinute: number): string => `${productionMinute * minute}s`;

function referenceModel(): BoundModel {
  const text = readFileSync(
    fileURLToPath(new URL('../../../trellis.yaml', import.meta.url)),
    'utf8',
  );
  const r = parseModel(text);
  if (!r.ok) throw new Error('trellis.yaml is invalid');
  return bindOrThrow(r.model, { kind: 'example', baseDir: '/srv' }, 'example plan');
}

const rules = compileSloRules(referenceModel(), {
  timeScale: { factor: FACTOR, scrapeInterval: `${minute}s` },
});
const route = 'get-order';
const alertRules = rules.groups
  .flatMap((g) => g.rules)
  .filter((r): r is AlertingRule => 'alert' in r);
const [page, , ticket1d, ticket3d] = scaledBurnWindows(FACTOR);

/** The latency alerts of the tiers whose (scaled) long windows are listed, at a production minute. */
function latency(productionMinute: number, longs: (string | undefined)[]) {
  return {
    eval_time: at(productionMinute),
    alertname: sloAlerts.latency,
    exp_alerts: longs.map((l) => {
      const rule = alertRules.find(
        (r) => r.labels.route === route && r.labels.slo === 'latency' && r.labels.long_window === l,
      );
      if (!rule) throw new Error(`no latency alert with long window ${String(l)}`);
      return { exp_labels: rule.labels, exp_annotations: rule.annotations };
    }),
  };
}

const series = (metric: string, labels: Record<string, string>, values: string) => ({
  series: `${metric}{${Object.entries({
    envoy_virtual_host: 'inbound_http',
    envoy_route: route,
    ...labels,
  })
    .map(([k, v]) => `${k}="${v}"`)
    .join(',')}}`,
  values,
});

const latencyRegression = {
  name: '(c) at scale 30: 35 % of requests over 5 ms from sample 360 to 420',
  interval: `${minute}s`,
  input_series: [
    series('envoy_vhost_route_upstream_rq_completed', {}, '0+600x780'),
    series('envoy_vhost_route_upstream_rq_time_count', {}, '0+600x780'),
    series(
      'envoy_vhost_route_upstream_rq_time_bucket',
      { le: '5' },
      '0+600x360 216390+390x59 240000+600x359',
    ),
  ],
  alert_rule_test: [
    latency(370, []),
    latency(371, [ticket3d?.long]),
    latency(384, [ticket3d?.long]),
    latency(385, [page?.long, ticket3d?.long]),
    latency(394, [page?.long, ticket3d?.long, ticket1d?.long]),
    latency(422, [page?.long, ticket3d?.long, ticket1d?.long]),
    latency(423, [ticket3d?.long, ticket1d?.long]),
    latency(530, [ticket3d?.long]),
    latency(770, []),
  ],
};

const loadRule = alertRules.find((r) => r.alert === sloAlerts.load && r.labels.route === route);
const overload = {
  name: '(d) at scale 30: 1,100 rps against the 1,000 promised',
  interval: `${minute}s`,
  input_series: [series('envoy_vhost_route_upstream_rq_completed', {}, `0+${1100 * minute}x30`)],
  alert_rule_test: [
    { eval_time: at(19), alertname: sloAlerts.load, exp_alerts: [] },
    {
      eval_time: at(20),
      alertname: sloAlerts.load,
      exp_alerts: [{ exp_labels: loadRule?.labels, exp_annotations: loadRule?.annotations }],
    },
  ],
};

const testFile = (tests: unknown[]): string =>
  stringify(
    { rule_files: ['slo-rules.yaml'], evaluation_interval: `${minute}s`, tests },
    { lineWidth: 0 },
  );

describe('SLO rules at time scale 30 under promtool', () => {
  let promtool = '';

  beforeAll(async () => {
    promtool = (await ensurePrometheus()).promtool;
    writeFileSync(join(root, 'slo-rules.yaml'), stringify(rules, { lineWidth: 0 }));
  });

  it('are valid rules, every alert labelled with its scale', async () => {
    const { stdout } = await run(promtool, ['check', 'rules', join(root, 'slo-rules.yaml')]);
    expect(stdout).toMatch(/SUCCESS: 48 rules found/);
    expect(page).toMatchObject({ long: '2m', short: '10s' });
    expect(alertRules.every((r) => r.labels.time_scale === String(FACTOR))).toBe(true);
  });

  it('fire and clear at the production times divided by 30', async () => {
    writeFileSync(join(root, 'scaled.yaml'), testFile([latencyRegression, overload]));
    const { stdout } = await run(promtool, ['test', 'rules', join(root, 'scaled.yaml')], {
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain('SUCCESS');
  });

  it('fail when the page is expected one evaluation early (the test can fail)', async () => {
    const early = {
      ...latencyRegression,
      alert_rule_test: [
        { ...latency(385, [page?.long, ticket3d?.long]), eval_time: `${385 * minute - minute}s` },
      ],
    };
    writeFileSync(join(root, 'early.yaml'), testFile([early]));
    const failed = await run(promtool, ['test', 'rules', join(root, 'early.yaml')]).then(
      () => null,
      (err: { code?: number; stdout?: string; stderr?: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(`${failed?.stdout ?? ''}${failed?.stderr ?? ''}`).toMatch(/FAILED/);
  });
});
