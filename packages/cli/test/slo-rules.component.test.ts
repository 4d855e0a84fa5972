/**
 * The SLO rules compiled from the reference model, under Prometheus's own rule engine: `promtool check
 * rules` accepts the file, and `promtool test rules` replays series through it. At 10 requests per
 * second on get-order (p99 budget 5 ms, error budget 1 % here), with six hours of healthy history:
 *
 * (a) half the requests fail from minute 360: the 1h/5m page fires at 378m, when the hour's error
 *     ratio passes 14.4 x 1 % (18 bad minutes / 120 = 0.15; 17 give 0.142), after the 3d/6h ticket
 *     (368m) and before the 1d/2h ticket (383m) and the 6h/30m page (404m, 44/720 > 0.06);
 * (b) 0.5 % errors and 0.5 % slow requests: no alert of any kind;
 * (c) 35 % of requests over 5 ms from minute 360 to 420: the latency page fires at 385m
 *     (25 x 0.35 / 60 = 0.146 > 0.144) and clears at 423m, once the last 5 minutes hold only two slow
 *     ones (0.14); the 6h/30m page never fires (at most 0.35 x 60 / 360 = 0.058); the tickets clear
 *     at 530m and 770m;
 * (d) 1,100 rps against the 1,000 the budget was promised at: the load ticket after 5m + 15m.
 *
 * Every expected firing time is hand-computed from Prometheus's rate() (counters from zero, samples on
 * the window's edges, so no extrapolation); a wrong one (the page a minute early) makes promtool fail.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { ensurePrometheus } from '@trellis/local/toolchain';
import {
  bindOrThrow,
  compileSloRules,
  parseModel,
  renderTarget,
  sloAlerts,
  validateModel,
} from '@trellis/policy';
import type { AlertingRule, BoundModel, PrometheusRuleFile } from '@trellis/policy';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';

const run = promisify(execFile);
const root = mkdtempSync(join(tmpdir(), 'trellis-slo-rules-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const referenceText = readFileSync(
  fileURLToPath(new URL('../../../trellis.yaml', import.meta.url)),
  'utf8',
);

/** The reference model, with get-order allowed 1 % errors so that its availability burn is finite. */
function testModel(): BoundModel {
  const data = parse(referenceText) as {
    routes: Record<string, { budget: Record<string, number> }>;
  };
  const budget = data.routes['get-order']?.budget;
  if (!budget) throw new Error('trellis.yaml: get-order has no budget');
  budget.maxErrorRate = 0.01;
  const r = validateModel(data);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return bindOrThrow(r.model, { kind: 'example', baseDir: '/srv' }, 'example plan');
}

const rules: PrometheusRuleFile = compileSloRules(testModel());
const route = 'get-order';
const alertRules = rules.groups
  .flatMap((g) => g.rules)
  .filter((r): r is AlertingRule => 'alert' in r);

/** The alert a tier raises, as promtool expects it: every label but alertname, and annotations. */
function expected(slo: 'availability' | 'latency', long: string) {
  const rule = alertRules.find(
    (r) => r.labels.route === route && r.labels.slo === slo && r.labels.long_window === long,
  );
  if (!rule) throw new Error(`no ${slo} alert with long window ${long}`);
  return { exp_labels: rule.labels, exp_annotations: rule.annotations };
}

/** One `alert_rule_test` case: at `minute`, exactly the tiers listed (by long window) fire. */
function at(minute: number, slo: 'availability' | 'latency', longs: string[]) {
  return {
    eval_time: `${minute}m`,
    alertname: sloAlerts[slo],
    exp_alerts: longs.map((l) => expected(slo, l)),
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
const completed = (values: string) => series('envoy_vhost_route_upstream_rq_completed', {}, values);
const errors = (values: string) =>
  series('envoy_vhost_route_upstream_rq_xx', { envoy_response_code_class: '5' }, values);
const fast = (values: string) =>
  series('envoy_vhost_route_upstream_rq_time_bucket', { le: '5' }, values);
const timed = (values: string) => series('envoy_vhost_route_upstream_rq_time_count', {}, values);

const fastBurn = {
  name: '(a) half the requests fail from minute 360',
  interval: '1m',
  input_series: [completed('0+600x420'), errors('0x360 300+300x59')],
  alert_rule_test: [
    at(367, 'availability', []),
    at(368, 'availability', ['3d']),
    at(377, 'availability', ['3d']),
    at(378, 'availability', ['1h', '3d']),
    at(383, 'availability', ['1h', '3d', '1d']),
    at(403, 'availability', ['1h', '3d', '1d']),
    at(404, 'availability', ['1h', '6h', '3d', '1d']),
  ],
  promql_expr_test: [
    {
      expr: `route:trellis_slo_errors:ratio_rate1h{route="${route}"}`,
      eval_time: '378m',
      exp_samples: [
        { labels: `route:trellis_slo_errors:ratio_rate1h{route="${route}"}`, value: 0.15 },
      ],
    },
  ],
};

const healthy = {
  name: '(b) 0.5 % errors and 0.5 % slow requests',
  interval: '1m',
  input_series: [completed('0+600x400'), errors('0+3x400'), timed('0+600x400'), fast('0+597x400')],
  alert_rule_test: [10, 60, 361, 400].flatMap((m) => [
    at(m, 'availability', []),
    at(m, 'latency', []),
    { eval_time: `${m}m`, alertname: sloAlerts.load, exp_alerts: [] },
  ]),
};

const latencyRegression = {
  name: '(c) 35 % of requests over 5 ms from minute 360 to 420',
  interval: '1m',
  input_series: [
    completed('0+600x780'),
    timed('0+600x780'),
    fast('0+600x360 216390+390x59 240000+600x359'),
  ],
  alert_rule_test: [
    at(370, 'latency', []),
    at(371, 'latency', ['3d']),
    at(384, 'latency', ['3d']),
    at(385, 'latency', ['1h', '3d']),
    at(393, 'latency', ['1h', '3d']),
    at(394, 'latency', ['1h', '3d', '1d']),
    at(422, 'latency', ['1h', '3d', '1d']),
    at(423, 'latency', ['3d', '1d']),
    at(529, 'latency', ['3d', '1d']),
    at(530, 'latency', ['3d']),
    at(769, 'latency', ['3d']),
    at(770, 'latency', []),
    at(770, 'availability', []),
  ],
};

const loadRule = alertRules.find((r) => r.alert === sloAlerts.load && r.labels.route === route);
const overload = {
  name: '(d) 1,100 rps against a budget promised at 1,000',
  interval: '1m',
  input_series: [completed('0+66000x30')],
  alert_rule_test: [
    { eval_time: '19m', alertname: sloAlerts.load, exp_alerts: [] },
    {
      eval_time: '20m',
      alertname: sloAlerts.load,
      exp_alerts: [{ exp_labels: loadRule?.labels, exp_annotations: loadRule?.annotations }],
    },
  ],
};

function testFile(tests: unknown[]): string {
  return stringify(
    { rule_files: ['slo-rules.yaml'], evaluation_interval: '1m', tests },
    { lineWidth: 0 },
  );
}

describe('SLO rules under promtool (Prometheus 2.42 rule engine)', () => {
  let promtool = '';

  beforeAll(async () => {
    promtool = (await ensurePrometheus()).promtool;
    writeFileSync(join(root, 'slo-rules.yaml'), stringify(rules, { lineWidth: 0 }));
  });

  it('passes promtool check rules, as rendered by `policy render --target prometheus` too', async () => {
    const reference = parseModel(referenceText);
    if (!reference.ok) throw new Error('trellis.yaml is invalid');
    const rendered = renderTarget(reference.model, 'prometheus');
    writeFileSync(join(root, 'rendered.yaml'), rendered['prometheus/slo-rules.yaml'] ?? '');
    for (const f of ['slo-rules.yaml', 'rendered.yaml']) {
      const { stdout } = await run(promtool, ['check', 'rules', join(root, f)]);
      expect(stdout).toMatch(/SUCCESS: 48 rules found/);
    }
  });

  it('fires, stays quiet and clears at the hand-computed times', async () => {
    writeFileSync(
      join(root, 'slo-test.yaml'),
      testFile([fastBurn, healthy, latencyRegression, overload]),
    );
    const { stdout } = await run(promtool, ['test', 'rules', join(root, 'slo-test.yaml')], {
      maxBuffer: 16 * 1024 * 1024,
    });
    expect(stdout).toContain('SUCCESS');
  });

  it('fails when the page is expected a minute early (the test can fail)', async () => {
    const early = { ...fastBurn, alert_rule_test: [at(377, 'availability', ['1h', '3d'])] };
    writeFileSync(join(root, 'early.yaml'), testFile([early]));
    const failed = await run(promtool, ['test', 'rules', join(root, 'early.yaml')]).then(
      () => null,
      (err: { code?: number; stdout?: string; stderr?: string }) => err,
    );
    expect(failed?.code).toBe(1);
    expect(`${failed?.stdout ?? ''}${failed?.stderr ?? ''}`).toMatch(/FAILED/);
  });
});
