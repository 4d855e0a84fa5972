/**
 * The regression gate, for real and both ways, in one interleaved run (issue 14, ADR 0013): four
 * arms side by side, each a compiled orders-api sidecar Envoy (real Keycloak JWKS, mTLS with SPIFFE
 * SVIDs) in front of its own orders app, plus the bare mTLS TCP proxy floor. A′ is A again and must
 * pass; `delay` has Envoy's HTTP fault filter adding 2 ms to every request and must fail on the
 * traversal; `burn`'s app spins CPU per request and must fail on the app's CPU per request.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GATE_ARMS,
  GATE_COMPARISONS,
  INJECTED_BURN_US,
  INJECTED_DELAY_MS,
} from '../src/ab/arms.ts';
import { runAb, type AbResult } from '../src/ab/run.ts';
import { startAbStack, type AbStack } from '../src/ab/stack.ts';
import type { MetricVerdict } from '../src/gate/compare.ts';

const root = mkdtempSync(join(tmpdir(), 'trellis-gate-ab-'));
let stack: AbStack | undefined;
let result: AbResult | undefined;

beforeAll(async () => {
  stack = await startAbStack(join(root, 'stack'), GATE_ARMS);
  result = await runAb({
    stack,
    comparisons: GATE_COMPARISONS,
    reportsDir: join(root, 'reports'),
    command: 'gate-ab.component.test.ts',
    log: () => undefined,
  });
}, 420_000);

afterAll(async () => {
  await stack?.stop();
  rmSync(root, { recursive: true, force: true });
});

function verdictOf(candidate: string) {
  const v = result?.verdicts.find((x) => x.comparison.candidate === candidate);
  if (!v) throw new Error(`no verdict for ${candidate}`);
  return v.verdict;
}

function metric(candidate: string, key: string): MetricVerdict {
  const m = verdictOf(candidate).metrics.find((x) => x.metric.key === key);
  if (!m) throw new Error(`no metric ${key} for ${candidate}`);
  return m;
}

describe('the regression gate on interleaved A/B blocks (component)', () => {
  it('measured every block of every arm through the sidecar and the floor', () => {
    if (!result) throw new Error('no result');
    expect(result.plan.arms).toEqual(['A', 'A2', 'delay', 'burn']);
    expect(result.blocks).toHaveLength(result.plan.blocks.length);
    for (const b of result.blocks) {
      // About rate × block seconds iterations, every one with both requests answered 200.
      expect(b.iterations, `block ${b.index}`).toBeGreaterThan(100);
      expect(b.cpuSidecarMsPerReq, `block ${b.index}`).toBeGreaterThan(0);
      expect(b.cpuAppMsPerReq, `block ${b.index}`).toBeGreaterThan(0);
      expect(b.floorMedianMs, `block ${b.index}`).toBeGreaterThan(0);
      expect(b.cpuFloorMsPerReq, `block ${b.index}`).toBeGreaterThan(0);
    }
    // Only the delay arm runs the fault filter, and only the burn arm spins.
    for (const a of stack?.arms ?? []) {
      expect(JSON.stringify(a.bootstrap).includes('envoy.filters.http.fault'), a.name).toBe(
        a.name === 'delay',
      );
      expect(a.burnUs, a.name).toBe(a.name === 'burn' ? INJECTED_BURN_US : 0);
    }
  });

  it('passes A against A′ (the same build): no metric regresses', () => {
    const v = verdictOf('A2');
    expect(v.outcome, JSON.stringify(v.metrics.map((m) => m.reason))).toBe('pass');
    expect(v.metrics.map((m) => [m.metric.key, m.outcome])).toEqual([
      ['traversal', expect.not.stringMatching(/regression|inconclusive/)],
      ['cpu:sidecar', expect.not.stringMatching(/regression|inconclusive/)],
      ['cpu:app', expect.not.stringMatching(/regression|inconclusive/)],
    ]);
  });

  it(`fails the sidecar with a ${INJECTED_DELAY_MS} ms fault-filter delay, on the traversal`, () => {
    const v = verdictOf('delay');
    expect(v.outcome).toBe('fail');
    const t = metric('delay', 'traversal');
    expect(t.outcome).toBe('regression');
    expect(t.p).toBeLessThan(0.01);
    // The shift is the injected delay, give or take what the machine adds.
    expect(t.shift).toBeGreaterThan(INJECTED_DELAY_MS * 0.75);
    expect(t.shift).toBeGreaterThanOrEqual(t.minEffect);
    expect(metric('delay', 'cpu:app').outcome).not.toBe('regression');
  });

  it('fails the app that burns CPU per request, on its CPU per request', () => {
    const v = verdictOf('burn');
    expect(v.outcome).toBe('fail');
    const c = metric('burn', 'cpu:app');
    expect(c.outcome).toBe('regression');
    expect(c.p).toBeLessThan(0.01);
    // Two requests per iteration reach the app (sidecar and floor), each spinning INJECTED_BURN_US.
    expect(c.shift).toBeGreaterThan((2 * INJECTED_BURN_US * 0.75) / 1000);
    expect(c.ratio).toBeGreaterThan(1.5);
    expect(metric('burn', 'traversal').outcome).not.toBe('regression');
    expect(metric('burn', 'cpu:sidecar').outcome).not.toBe('regression');
  });

  it('writes the verdict tables, the blocks and the vs-peers table, and no secret', () => {
    if (!result || !stack) throw new Error('no result');
    expect(result.outcome).toBe('fail');
    const files = readdirSync(result.reportDir).sort();
    expect(files).toEqual(['gate-plan.json', 'gate.json', 'gate.md', 'k6.log']);
    const md = readFileSync(join(result.reportDir, 'gate.md'), 'utf8');
    expect(md).toContain('**FAIL: a candidate regressed against its baseline**');
    expect(md).toContain('## A2 against A\n\n**Regression gate: PASS: no metric regressed**');
    expect(md).toMatch(/## delay against A\n\n\*\*Regression gate: FAIL: a metric regressed\*\*/);
    expect(md).toMatch(
      /\| sidecar traversal − floor \(ms\) \|[^\n]*\| \*\*REGRESSION\*\* \| p = [0-9.e-]+ < α = 0\.01/,
    );
    expect(md).toMatch(/\| app CPU per request \(CPU-ms\/req\) \|[^\n]*\| \*\*REGRESSION\*\* \|/);
    expect(md).toContain('## Vs peers');
    expect(md).toContain(
      'https://istio.io/latest/docs/ops/deployment/performance-and-scalability/',
    );
    expect(md).toMatch(/\| \*\*Trellis\*\* sidecar \(arm A, this run\) \| [0-9.]+ ms median/);
    for (const f of files) {
      const text = readFileSync(join(result.reportDir, f), 'utf8');
      expect(text.includes(stack.password), f).toBe(false);
      expect(/eyJ[\w-]{10,}\.eyJ[\w-]{10,}/.test(text), f).toBe(false);
    }
  });
});
