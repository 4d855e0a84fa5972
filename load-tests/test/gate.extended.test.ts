/**
 * The gate, for real: the request path of the local stack (real Keycloak, compiled sidecar and
 * ingress Envoys, compiled nginx) in front of a tiny orders app, and k6 built from source. A generous
 * budget passes and writes the whole report; a budget no request can meet (create-order p99 ≤ 0.01 ms)
 * makes `./trellis load` exit 99, and the report names that route.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReportData } from '../src/report.ts';
import { runLoad } from '../src/run.ts';
import { startMiniStack, type MiniStack } from './fixtures/mini-stack.ts';

const root = mkdtempSync(join(tmpdir(), 'trellis-load-gate-'));
const reports = join(root, 'reports');
let stack: MiniStack | undefined;

// Short phases: enough requests for stable percentiles at the smoke rate, and a bounded run.
const short = { durationS: 6, warmupS: 3, connectS: 5, rps: 20, meshRate: 4 };
const generous = ['create-order:p99=5000', 'get-order:p99=5000', 'mesh:p50=1000,p99=5000'];

/** Every file of a report dir, as text. */
function reportTexts(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f), 'utf8')]));
}

beforeAll(async () => {
  stack = await startMiniStack(join(root, 'stack'));
}, 600_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('./trellis load gate (component)', () => {
  it('passes with a generous budget and writes the whole report', async () => {
    if (!stack) throw new Error('no stack');
    const served = stack.served();
    const r = await runLoad({
      scenario: 'smoke',
      target: stack.target,
      model: stack.model,
      reportsDir: reports,
      budgetOverrides: generous,
      ...short,
      log: () => undefined,
    });
    const files = reportTexts(r.reportDir);
    expect(r.exitCode, files['k6.log']).toBe(0);
    expect(Object.keys(files).sort()).toEqual([
      'dashboard.html',
      'k6.log',
      'mesh-overhead.svg',
      'plan.json',
      'report.json',
      'summary.json',
      'summary.md',
    ]);
    const rep = JSON.parse(files['report.json'] ?? '{}') as ReportData;
    // Every route and every mesh path was measured, through the real sidecars.
    for (const route of rep.routes) {
      expect(route.count, route.route).toBeGreaterThan(0);
      expect(route.errorRate).toBe(0);
      expect(route.breached).toEqual([]);
    }
    expect(rep.mesh?.paths.map((p) => p.name)).toEqual(['edge', 'ingress', 'sidecar', 'direct']);
    for (const p of rep.mesh?.paths ?? []) expect(p.count, p.name).toBeGreaterThan(0);
    for (const h of rep.mesh?.hops ?? []) expect(h.count, h.name).toBeGreaterThan(0);
    expect(stack.served() - served).toBeGreaterThan(200);
    // Warm-up excluded, connections reused, checks all passed.
    expect(rep.connectingP99).toBe(0);
    expect(rep.tlsHandshakingP99).toBe(0);
    expect(rep.checksRate).toBe(1);
    // k6's own CPU and Envoy's own timing over the measured window.
    expect(rep.k6.cpu?.average).toBeGreaterThan(0);
    for (const e of rep.envoy) {
      expect(e.error, e.name).toBeUndefined();
      expect(
        e.stats.find((s) => s.stat === 'http.inbound_http.downstream_rq_time')?.count,
        e.name,
      ).toBeGreaterThan(0);
    }
    expect(files['summary.md']).toContain('**PASS: every budget held**');
    expect(files['dashboard.html']).toContain('<html');
    expect(files['mesh-overhead.svg']).toContain('<svg');
    // No secret reaches the report: neither the password nor any token.
    for (const [f, text] of Object.entries(files)) {
      expect(text.includes(stack.password), f).toBe(false);
      expect(/eyJ[\w-]{10,}\.eyJ[\w-]{10,}/.test(text), f).toBe(false);
    }
  }, 300_000);

  it("k6 gets its token over TLS trusting the stack's bundle, and fails without it", async () => {
    if (!stack) throw new Error('no stack');
    // Routes only: without the sidecar path k6 verifies every certificate itself (no
    // insecureSkipTLSVerify), so the token endpoint's must chain to the bundle it was given.
    const { mesh: _mesh, envoyAdmins: _admins, ...routesOnly } = stack.target;
    const model = stack.model;
    expect(routesOnly.tokenUrl).toMatch(/^https:\/\/localhost:\d+\//);
    const run = (target: typeof routesOnly) =>
      runLoad({
        scenario: 'smoke',
        target,
        model,
        reportsDir: reports,
        budgetOverrides: generous.filter((b) => !b.startsWith('mesh:')),
        ...short,
        log: () => undefined,
      });
    const trusted = await run(routesOnly);
    const trustedFiles = reportTexts(trusted.reportDir);
    expect(trusted.exitCode, trustedFiles['k6.log']).toBe(0);
    expect(JSON.parse(trustedFiles['plan.json'] ?? '{}')).not.toHaveProperty(
      'options.insecureSkipTLSVerify',
    );
    // The same run with the system's roots only: the token request in setup() is refused.
    const { trustBundle: _bundle, ...untrusted } = routesOnly;
    const refused = await run(untrusted);
    const log = reportTexts(refused.reportDir)['k6.log'] ?? '';
    expect(refused.exitCode).not.toBe(0);
    expect(log).toMatch(/token request to https:\/\/localhost:\d+\/\S+ failed: .*x509/);
  }, 300_000);

  it('fails with exit 99 through the CLI when a route budget is tightened, naming the route', async () => {
    if (!stack) throw new Error('no stack');
    const targetFile = join(root, 'target.json');
    writeFileSync(targetFile, JSON.stringify(stack.target), { mode: 0o600 });
    const modelFile = join(root, 'model.json');
    // JSON is YAML: the CLI reads the model this stack runs.
    writeFileSync(modelFile, JSON.stringify(stack.model));
    const out = join(root, 'cli-reports');
    const args = [
      resolve(import.meta.dirname, '../../packages/cli/src/main.ts'),
      'load',
      '--scenario',
      'smoke',
      '--target',
      targetFile,
      '--model',
      modelFile,
      '--out',
      out,
      '--rps',
      String(short.rps),
      '--duration',
      `${short.durationS}s`,
      '--warmup',
      `${short.warmupS}s`,
      '--budget-override',
      'create-order:p99=0.01',
      '--budget-override',
      'get-order:p99=5000',
      '--budget-override',
      'mesh:p50=1000,p99=5000',
    ];
    const { code, output } = await new Promise<{ code: number | null; output: string }>((res) => {
      const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      let text = '';
      child.stdout.on('data', (b: Buffer) => (text += b.toString()));
      child.stderr.on('data', (b: Buffer) => (text += b.toString()));
      const timer = setTimeout(() => child.kill('SIGKILL'), 240_000);
      child.on('close', (c) => {
        clearTimeout(timer);
        res({ code: c, output: text });
      });
    });
    expect(code, output).toBe(99);
    const dirs = readdirSync(out);
    expect(dirs).toHaveLength(1);
    const md = readFileSync(join(out, dirs[0] ?? '', 'summary.md'), 'utf8');
    expect(md).toContain('**FAIL: a budget was broken (k6 exit 99, thresholds crossed)**');
    expect(md).toMatch(
      /- route `create-order`: `http_req_duration\{route:create-order,phase:measure\}` `p\(99\)<=0\.01`/,
    );
    expect(md).toMatch(/\| create-order \| POST \/orders \|.*\*\*BREACHED\*\*/);
    expect(md).not.toMatch(/route `get-order`/);
    expect(md).toContain('| budget overrides | create-order: p99=0.01; get-order: p99=5000;');
    expect(output).not.toContain(stack.password);
  }, 300_000);
});
