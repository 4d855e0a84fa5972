/**
 * One load run, end to end: plan from the model's budgets, preflight, k6, k6's CPU and Envoy's stats
 * over the measured window, and the report under `<reportsDir>/<timestamp>/`. The exit code is k6's,
 * unchanged (99 when a budget threshold was crossed), so CI and `./trellis load` can pass it on.
 */
import { execFile, spawn } from 'node:child_process';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { compileK6Thresholds, type K6Thresholds, type ValidModel } from '@trellis/policy';
import { loadModelFile, referenceModelPath } from '@trellis/components/model';
import { k6Env } from '@trellis/local/toolchain';
import { renderOverheadSvg } from './chart.ts';
import { CpuSampler, type CpuUsage } from './cpu.ts';
import { scrapeEnvoy, summariseEnvoy, type EnvoyTiming, type Histograms } from './envoy-stats.ts';
import {
  applyBudgetOverrides,
  describeOverride,
  refuseHiddenOverrides,
  parseBudgetOverride,
  type BudgetOverride,
} from './overrides.ts';
import type { ScenarioName } from './plan-types.ts';
import { buildPlan } from './plan.ts';
import {
  podHopResult,
  podProbePlan,
  probeToken,
  seedPodProbe,
  startPodProbe,
  type PodProbeSamples,
  type RunningPodProbe,
} from './pod-probe.ts';
import { collectReport, type K6Export, type ReportData } from './report.ts';
import { renderSummaryMd } from './summary-md.ts';
import type { LoadTarget } from './target.ts';

/** The k6 script, next to this package's sources. */
export const K6_SCRIPT = resolve(import.meta.dirname, '..', 'k6', 'load.ts');
/** Default model: the repository's `trellis.yaml`. */
export const DEFAULT_MODEL = referenceModelPath;

/** Options of {@link runLoad}. */
export interface RunLoadOptions {
  scenario: ScenarioName;
  target: LoadTarget;
  /** The model (its budgets and routes), or a path to it. @default the repository's trellis.yaml */
  model?: ValidModel | string;
  /** Reports go to `<reportsDir>/<timestamp>/`. */
  reportsDir: string;
  /** Total rate (rps) across the routes; the base rate for `spike`. @default per scenario */
  rps?: number;
  /** Measured seconds. @default per scenario */
  durationS?: number;
  /** Warm-up seconds (excluded from the thresholds). @default per scenario */
  warmupS?: number;
  /** Longest connect phase (seconds). @default 10 */
  connectS?: number;
  /** Mesh probe iterations per second. @default per scenario */
  meshRate?: number;
  /** Stop at the first broken budget (the gate). False measures the whole duration. @default true */
  abortOnFail?: boolean;
  /** `--budget-override` specs, e.g. `create-order:p99=0.01`. */
  budgetOverrides?: readonly string[];
  /**
   * Judge the run by this environment of the model's `budgets.environments` (e.g. `ci`); the report
   * shows its budgets and production's side by side. @default production budgets
   */
  environment?: string;
  /** The command line, for the report. @default a description of this call */
  command?: string;
  /** Envoy's stats flush interval (ms), to wait before scraping. @default 5000 (Envoy's default) */
  envoyFlushMs?: number;
  /** Where progress lines and k6's output go. @default process.stderr */
  log?: (chunk: string) => void;
}

/** What {@link runLoad} returns. */
export interface RunLoadResult {
  /** k6's exit code, unchanged (0 pass, 99 thresholds crossed, others: k6 errors); 124 on our timeout. */
  exitCode: number;
  reportDir: string;
  report: ReportData;
}

/** The model itself, or parsed from a path (default: the repository's trellis.yaml). */
export function loadModel(m: ValidModel | string | undefined): ValidModel {
  if (m !== undefined && typeof m !== 'string') return m;
  return loadModelFile(m ?? DEFAULT_MODEL);
}

/** A fresh `<reportsDir>/<UTC timestamp>` directory (suffixed when two runs start in one second). */
export function reportDirFor(reportsDir: string, now = new Date()): string {
  const stamp = now
    .toISOString()
    .replace(/\.\d+Z$/, 'Z')
    .replace(/:/g, '-');
  let dir = join(reportsDir, stamp);
  for (let i = 2; existsSync(dir) && i < 100; i++) dir = join(reportsDir, `${stamp}-${i}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Verify an https server's certificate (the ingress, the token endpoint) against the trust bundle,
 * as k6 may not (see ADR 0007).
 */
export function verifyTls(url: string, trustBundle: string): Promise<void> {
  const u = new URL(url);
  if (u.protocol !== 'https:') return Promise.resolve();
  return new Promise((res, rej) => {
    const req = httpsRequest(
      u,
      {
        method: 'GET',
        ca: readFileSync(trustBundle),
        // The local ingress and Keycloak listen on 127.0.0.1; `localhost` may resolve to ::1 first.
        family: u.hostname === 'localhost' ? 4 : 0,
        timeout: 10_000,
      },
      (r) => {
        r.resume();
        res();
      },
    );
    req.on('timeout', () => req.destroy(new Error('timed out after 10 s')));
    req.on('error', (err: NodeJS.ErrnoException) =>
      rej(
        new Error(
          `preflight: ${url} did not answer over TLS verified by ${trustBundle}: ${err.code ?? ''} ${err.message}`.trim(),
        ),
      ),
    );
    req.end();
  });
}

function k6Version(bin: string, env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((res) => {
    execFile(bin, ['version'], { env, timeout: 30_000 }, (err, stdout) =>
      res(err ? 'k6 (version unknown)' : (stdout.trim().split('\n')[0] ?? 'k6')),
    );
  });
}

interface Marks {
  start?: number;
  end?: number;
}

function controlServer(marks: Marks, on: (what: 'start' | 'end') => void): Promise<Server> {
  const server = createServer((req, res) => {
    const what = req.url === '/mark/start' ? 'start' : req.url === '/mark/end' ? 'end' : null;
    if (what && marks[what] === undefined) {
      marks[what] = Date.now();
      on(what);
    }
    res.writeHead(what ? 204 : 404).end();
  });
  return new Promise((res) => server.listen(0, '127.0.0.1', () => res(server)));
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Run one scenario against `target` and write its report. Never prints or stores the token form. */
export async function runLoad(o: RunLoadOptions): Promise<RunLoadResult> {
  const log = o.log ?? ((s: string) => process.stderr.write(s));
  const say = (s: string): void => log(`\u001b[36m[load]\u001b[0m ${s}\n`);
  const overrides: BudgetOverride[] = (o.budgetOverrides ?? []).map(parseBudgetOverride);
  const model = applyBudgetOverrides(loadModel(o.model), overrides);
  const envOpt = o.environment !== undefined ? { environment: o.environment } : {};
  const compiled: K6Thresholds = compileK6Thresholds(model, envOpt);
  refuseHiddenOverrides(compiled, overrides);
  const { bin, env: baseEnv } = await k6Env();

  let scratch = '';
  const marks: Marks = {};
  let sampler: CpuSampler | null = null;
  let cpu: CpuUsage | null = null;
  const flushMs = o.envoyFlushMs ?? 5_000;
  const admins = o.target.envoyAdmins ?? [];
  const before = new Map<string, Histograms | Error>();
  const scrapes: Promise<void>[] = [];
  const scrapeAll = (into: Map<string, Histograms | Error>): Promise<void> =>
    Promise.all(
      admins.map(async (a) => {
        try {
          into.set(a.name, await scrapeEnvoy(a.url, 5_000, a.pod));
        } catch (err) {
          into.set(a.name, err instanceof Error ? err : new Error(String(err)));
        }
      }),
    ).then(() => undefined);
  let podProbe: RunningPodProbe | null = null;
  let podSamples: Promise<PodProbeSamples> | null = null;
  let refresher: NodeJS.Timeout | undefined;
  const server = await controlServer(marks, (what) => {
    if (what === 'start') {
      podProbe?.measure();
      sampler?.start();
      say('measuring');
      // Histograms merge on Envoy's stats flush: scrape one flush later, so that none of the
      // warm-up's samples land in the window (a few measured seconds are left out instead).
      scrapes.push(sleep(flushMs + 500).then(() => scrapeAll(before)));
    } else {
      cpu = sampler?.stop() ?? null;
      if (podProbe) podSamples = podProbe.finish();
      say('measured window over');
    }
  });

  try {
    const controlUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const { plan, layout } = buildPlan({
      model,
      scenario: o.scenario,
      target: o.target,
      controlUrl,
      ...(o.rps !== undefined ? { rps: o.rps } : {}),
      ...(o.durationS !== undefined ? { durationS: o.durationS } : {}),
      ...(o.warmupS !== undefined ? { warmupS: o.warmupS } : {}),
      ...(o.connectS !== undefined ? { connectS: o.connectS } : {}),
      ...(o.meshRate !== undefined ? { meshRate: o.meshRate } : {}),
      ...(o.abortOnFail === false ? { abortOnFail: false } : {}),
      ...envOpt,
    });
    const reportDir = reportDirFor(o.reportsDir);
    const planFile = join(reportDir, 'plan.json');
    writeFileSync(planFile, JSON.stringify(plan, null, 2));
    if (o.target.trustBundle)
      for (const url of [o.target.ingressUrl, o.target.tokenUrl])
        await verifyTls(url, o.target.trustBundle);

    // A pod backend's inner paths: the in-pod probe warms up from here, k6's marks bound its window.
    const inPod =
      layout.meshRate > 0
        ? podProbePlan(
            o.target,
            plan.routes.find((r) => r.recipe === 'get-order'),
          )
        : null;
    const writer = plan.routes.find((r) => r.recipe === 'create-order');
    if (inPod && writer && o.target.mesh?.clientCert) {
      const seed = await seedPodProbe(o.target, writer.path, inPod.path);
      const bundle = o.target.trustBundle;
      podProbe = startPodProbe(inPod, {
        rate: layout.meshRate,
        sidecarUrl: inPod.sidecarUrl,
        appUrl: inPod.appUrl,
        path: inPod.path.replace(/\{[^/}]+\}/, encodeURIComponent(seed.id)),
        token: seed.token,
        payloadHeader: inPod.payloadHeader,
        ...(inPod.xfcc !== undefined ? { xfcc: inPod.xfcc } : {}),
        cert: readFileSync(o.target.mesh.clientCert.certFile, 'utf8'),
        key: readFileSync(o.target.mesh.clientCert.keyFile, 'utf8'),
        ca: bundle ? readFileSync(bundle, 'utf8') : '',
      });
      // Refreshed half-way through each token's life (k6's VUs refresh theirs the same way).
      const refreshMs = Math.max(10, seed.expiresInS / 2) * 1000;
      refresher = setInterval(() => {
        probeToken(o.target).then(
          (t) => podProbe?.setToken(t.token),
          (err: Error) => say(`in-pod probe: ${err.message}`),
        );
      }, refreshMs);
      refresher.unref();
      say(`the ${inPod.hop.name} hop is measured inside pod ${inPod.pod.netns}`);
    }
    const version = await k6Version(bin, baseEnv);
    const startedAt = new Date();
    const loadStart = loadavg();
    const summaryFile = join(reportDir, 'summary.json');
    // k6's export holds setup()'s return value (`setup_data`), and so the token: k6 writes it to a
    // private scratch dir, and the report gets a copy without it.
    scratch = mkdtempSync(join(tmpdir(), 'trellis-load-'));
    const rawSummary = join(scratch, 'summary.json');
    const period = Math.min(10, Math.max(1, Math.floor(layout.totalS / 20)));
    const env: NodeJS.ProcessEnv = {
      ...baseEnv,
      TRELLIS_LOAD_PLAN: planFile,
      TRELLIS_TOKEN_FORM: new URLSearchParams(o.target.tokenForm).toString(),
      // Go's crypto/x509 reads the trust store from SSL_CERT_FILE on Linux: k6 then trusts the stack's root.
      ...(o.target.trustBundle ? { SSL_CERT_FILE: resolve(o.target.trustBundle) } : {}),
      // The HTML report (https://grafana.com/docs/k6/latest/results-output/web-dashboard/): no live
      // server (port -1), an export at the end; graphs need the run to last 3 periods or more.
      K6_WEB_DASHBOARD: 'true',
      K6_WEB_DASHBOARD_PORT: '-1',
      K6_WEB_DASHBOARD_PERIOD: `${period}s`,
      K6_WEB_DASHBOARD_EXPORT: join(reportDir, 'dashboard.html'),
    };
    say(
      `${o.scenario}: ${layout.rates.map((r) => `${r.route.name} ${r.rps} rps`).join(', ')}${layout.meshRate ? `, mesh probe ${layout.meshRate}/s` : ''}; ` +
        `warm-up ${layout.warmupS} s, measured ${layout.measureS} s; report in ${reportDir}`,
    );
    const k6Log = createWriteStream(join(reportDir, 'k6.log'));
    const args = [
      'run',
      '--no-color',
      '--quiet',
      // An empty address turns off k6's REST API (default localhost:6565), so runs never clash.
      '--address=',
      `--summary-export=${rawSummary}`,
      K6_SCRIPT,
    ];
    const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    if (child.pid !== undefined) sampler = new CpuSampler(child.pid);
    const tee = (b: Buffer): void => {
      k6Log.write(b);
      log(b.toString());
    };
    child.stdout.on('data', tee);
    child.stderr.on('data', tee);
    const limitMs = (layout.totalS + 300) * 1000;
    let timedOut = false;
    const exitCode = await new Promise<number>((res) => {
      const timer = setTimeout(() => {
        timedOut = true;
        say(`k6 still running after ${limitMs / 1000} s: stopping it`);
        child.kill('SIGTERM');
        setTimeout(() => child.kill('SIGKILL'), 10_000).unref();
      }, limitMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        say(`could not run k6: ${err.message}`);
        res(1);
      });
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        res(timedOut ? 124 : (code ?? (signal ? 1 : 0)));
      });
    });
    await new Promise<void>((r) => k6Log.end(r));
    const endedAt = Date.now();
    if (podProbe && podSamples === null) podSamples = podProbe.finish();
    const inPodSamples = podSamples ? await podSamples.catch((err: Error) => err) : null;
    if (marks.end === undefined) cpu = sampler?.stop() ?? null;
    await Promise.all(scrapes);
    const after = new Map<string, Histograms | Error>();
    if (admins.length > 0 && marks.start !== undefined) {
      await sleep(flushMs + 500);
      await scrapeAll(after);
    }
    const envoy: EnvoyTiming[] = admins.map((a) => {
      const b = before.get(a.name);
      const f = after.get(a.name);
      if (!(b && f) || b instanceof Error || f instanceof Error) {
        const e = b instanceof Error ? b : f instanceof Error ? f : null;
        return {
          name: a.name,
          stats: [],
          error: e ? e.message : 'not scraped (the measured window never started)',
        };
      }
      return summariseEnvoy(a.name, b, f);
    });

    let exp: K6Export | null = null;
    if (existsSync(rawSummary)) {
      const raw = JSON.parse(readFileSync(rawSummary, 'utf8')) as K6Export & {
        setup_data?: unknown;
      };
      delete raw.setup_data;
      exp = raw;
      writeFileSync(summaryFile, JSON.stringify(raw, null, 2));
    }
    const measuredS = marks.start !== undefined ? ((marks.end ?? endedAt) - marks.start) / 1000 : 0;
    const c = cpus();
    const notes: string[] = [];
    if (timedOut) notes.push(`The run was stopped after ${limitMs / 1000} s (exit code 124).`);
    if (o.target.trustBundle && plan.options.insecureSkipTLSVerify)
      notes.push(
        'k6 skipped certificate verification (the sidecar path needs it, see ADR 0007); the ingress and token endpoint certificates were verified against the trust bundle before the run.',
      );
    const report = collectReport({
      plan,
      layout,
      compiled,
      exp,
      measuredS,
      base: {
        scenario: o.scenario,
        startedAt: startedAt.toISOString().replace(/\.\d+Z$/, 'Z'),
        finishedAt: new Date(endedAt).toISOString().replace(/\.\d+Z$/, 'Z'),
        command: o.command ?? `runLoad({ scenario: '${o.scenario}' })`,
        target: o.target.ingressUrl,
        machine: {
          cpu: c[0]?.model.trim() ?? 'unknown CPU',
          cores: c.length,
          memGiB: Math.round(totalmem() / 2 ** 30),
          kernel: `Linux ${release()}`,
        },
        loadAverage: { start: loadStart, end: loadavg() },
        k6: { version, cpu },
        exitCode,
        overrides: overrides.map(describeOverride),
        envoy,
        notes,
      },
    });
    let finalCode = exitCode;
    if (inPodSamples instanceof Error) report.notes.push(inPodSamples.message);
    else if (inPod && inPodSamples !== null) {
      const mo = compiled.meshOverhead;
      const r = podHopResult(
        inPod.hop,
        inPodSamples,
        mo ? { p50Ms: mo.p50Ms, p99Ms: mo.p99Ms } : undefined,
        mo ? { p50Ms: mo.production.p50Ms, p99Ms: mo.production.p99Ms } : undefined,
      );
      report.mesh?.hops.unshift(r.hop);
      report.thresholds.push(...r.thresholds);
      report.notes.push(
        `The ${inPod.hop.name} hop was measured inside pod ${inPod.pod.netns} (its app listens on the pod's loopback): ` +
          `${inPodSamples.diffs.length} pairs, ${inPodSamples.failures} of ${inPodSamples.requests} requests not 200.`,
      );
      // A breach of the in-pod hop fails the run as k6's own hop thresholds do (exit 99).
      if (finalCode === 0 && r.hop.breached.length > 0) finalCode = 99;
      report.exitCode = finalCode;
    }
    const files: Record<string, string> = {
      'k6 JSON summary': 'summary.json',
      'k6 web dashboard (HTML)': 'dashboard.html',
      'k6 output': 'k6.log',
      'k6 plan (options and thresholds)': 'plan.json',
      'report data': 'report.json',
    };
    const svg = renderOverheadSvg(report);
    if (svg) {
      writeFileSync(join(reportDir, 'mesh-overhead.svg'), svg);
      files.chart = 'mesh-overhead.svg';
    }
    for (const [k, f] of Object.entries(files))
      if (f !== 'report.json' && !existsSync(join(reportDir, f))) delete files[k];
    writeFileSync(join(reportDir, 'report.json'), JSON.stringify(report, null, 2));
    writeFileSync(join(reportDir, 'summary.md'), renderSummaryMd(report, files));
    say(
      `${finalCode === 0 ? 'PASS' : finalCode === 99 ? 'FAIL (budget breached)' : `k6 exited ${finalCode}`}; report: ${join(reportDir, 'summary.md')}`,
    );
    for (const n of report.notes) say(n);
    return { exitCode: finalCode, reportDir, report };
  } finally {
    clearInterval(refresher);
    // A run that failed before the window closed still stops its in-pod probe.
    if (podProbe && podSamples === null) await podProbe.finish().catch(() => undefined);
    if (scratch) rmSync(scratch, { recursive: true, force: true });
    sampler?.stop();
    await new Promise<void>((r) => server.close(() => r()));
  }
}
