import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'packages/cli/src/main.ts');
const model = join(root, 'trellis.yaml');
const dir = mkdtempSync(join(tmpdir(), 'trellis-policy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function run(...args: string[]) {
  const r = spawnSync(process.execPath, [main, 'policy', ...args], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

// Each test spawns the CLI (a Node start per call): on a loaded 2-core machine that can pass 5 s.
describe('./trellis policy', { timeout: 60_000 }, () => {
  it('check passes on the reference model', () => {
    const r = run('check', model);
    expect(r.code).toBe(0);
    expect(r.out).toContain('trellis.yaml: ok (4 workloads, 2 routes, 1 agents)');
  });

  it('check prints path-qualified errors and exits 1', () => {
    const bad = join(dir, 'bad.yaml');
    writeFileSync(
      bad,
      readFileSync(model, 'utf8').replace('calls: [orders-api]', 'calls: [orders-api, payments]'),
    );
    const r = run('check', bad);
    expect(r.code).toBe(1);
    expect(r.err).toContain(
      `${bad}: workloads.ingress.calls[1]: unknown reference: no workload or data service named 'payments'`,
    );
  });

  it('a missing file is an error naming it', () => {
    const r = run('check', join(dir, 'nope.yaml'));
    expect(r.code).toBe(1);
    expect(r.err).toContain('nope.yaml: cannot read the model (ENOENT)');
  });

  it('usage errors exit 2', () => {
    expect(run().code).toBe(2);
    expect(run('frobnicate', model).code).toBe(2);
    expect(run('render', model).err).toContain('render needs --target');
    expect(run('render', model, '--target', 'helm').err).toContain("unknown target 'helm'");
    expect(run('check', model, '--out', dir).code).toBe(2);
  });

  it('render writes the files of a target to --out', () => {
    const out = join(dir, 'out');
    const r = run('render', model, '--target', 'envoy', '--out', out);
    expect(r.code).toBe(0);
    for (const f of [
      'envoy/orders-api/envoy.yaml',
      'envoy/orders-api/sds/svid.yaml',
      'envoy/ingress/envoy.yaml',
    ])
      expect(existsSync(join(out, f))).toBe(true);
    expect(readFileSync(join(out, 'envoy/orders-api/sds/svid.yaml'), 'utf8')).toContain(
      join(out, 'envoy/orders-api/certs/cert.pem'),
    );
  });

  it('render prints to stdout without --out', () => {
    const r = run('render', model, '--target', 'cassandra');
    expect(r.code).toBe(0);
    expect(r.out).toContain(
      "ADD IDENTITY IF NOT EXISTS 'spiffe://trellis.local/ns/trellis/sa/ledger' TO ROLE 'ledger';",
    );
    const k = run('render', model, '--target', 'istio', '--region', 'eu');
    expect(k.out).toContain('trellis.dev/region: eu');
    expect(run('render', model, '--target', 'istio', '--region', 'mars').code).toBe(1);
  });

  it('render --target prometheus writes the SLO rules, and names a p99 that is no bucket', () => {
    const out = join(dir, 'prom');
    const r = run('render', model, '--target', 'prometheus', '--out', out);
    expect(r.code).toBe(0);
    expect(readFileSync(join(out, 'prometheus/slo-rules.yaml'), 'utf8')).toContain(
      'envoy_vhost_route_upstream_rq_time_bucket{envoy_route="get-order",le="5"}',
    );
    expect(readFileSync(join(out, 'prometheus/prometheus-rules.yaml'), 'utf8')).toContain(
      'kind: PrometheusRule',
    );
    // The scrape jobs of the model's metrics scraper (ADR 0020): https with its SVID.
    const scrape = readFileSync(join(out, 'prometheus/prometheus.yml'), 'utf8');
    expect(scrape).toContain('job_name: envoy-orders-api');
    expect(scrape).toContain('scheme: https');
    expect(scrape).toContain('server_name: orders-api.trellis.svc');
    expect(scrape).toContain('- slo-rules.yaml');
    const off = join(dir, 'off-bucket.yaml');
    writeFileSync(
      off,
      readFileSync(model, 'utf8').replace(
        'budget: { rps: 1000, p99Ms: 5 }',
        'budget: { rps: 1000, p99Ms: 7 }',
      ),
    );
    const e = run('render', off, '--target', 'prometheus');
    expect(e.code).toBe(1);
    expect(e.err).toContain(
      `${off}: routes.get-order.budget.p99Ms: 7 ms is not a bucket boundary of envoy_vhost_route_upstream_rq_time_bucket`,
    );
    expect(e.out).toBe('');
  });

  it('schema prints the JSON Schema', () => {
    const r = run('schema');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.out) as { title: string }).title).toBe('Trellis policy model');
  });
});
