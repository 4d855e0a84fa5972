/** `summary.md`: the report of one run as the tables a person reads first. */
import { ms, pct, rate, round } from './format.ts';
import type { ReportData } from './report.ts';

function verdict(code: number): string {
  if (code === 0) return 'PASS: every budget held';
  if (code === 99) return 'FAIL: a budget was broken (k6 exit 99, thresholds crossed)';
  return `ERROR: k6 exited ${code} (not a threshold verdict; see k6.log)`;
}

function routeBudget(b: { p50Ms?: number; p99Ms: number; maxErrorRate: number }): string {
  return [
    b.p50Ms !== undefined ? `p50 ≤ ${b.p50Ms} ms` : null,
    `p99 ≤ ${b.p99Ms} ms`,
    `errors ≤ ${rate(b.maxErrorRate)}`,
  ]
    .filter(Boolean)
    .join(', ');
}

function meshBudget(b: { p50Ms: number; p99Ms: number }): string {
  return `p50 ≤ ${b.p50Ms} ms, p99 ≤ ${b.p99Ms} ms`;
}

/** `summary.md`: the tables a person reads first. */
export function renderSummaryMd(r: ReportData, files: Record<string, string>): string {
  const L: string[] = [];
  const loadavg = (a: number[]): string => a.map((x) => x.toFixed(2)).join(' / ');
  L.push(`# Load test: ${r.scenario}`, '');
  L.push(`**${verdict(r.exitCode)}**`, '');
  const breached = r.thresholds.filter((t) => !t.ok);
  if (breached.length > 0) {
    L.push('Breached:', '');
    for (const t of breached) {
      const who = t.tags.route
        ? `route \`${t.tags.route}\``
        : t.tags.hop
          ? `hop \`${t.tags.hop}\``
          : `\`${t.metric}\``;
      L.push(
        `- ${who}: \`${t.key}\` \`${t.expr}\` (measured ${t.value === null ? 'n/a' : round(t.value)})`,
      );
    }
    L.push('');
  }
  L.push(
    '| | |',
    '|---|---|',
    `| date | ${r.startedAt} → ${r.finishedAt} |`,
    `| command | \`${r.command}\` |`,
    `| target | ${r.target} |`,
    `| machine | ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memGiB} GiB, ${r.machine.kernel} |`,
    `| load average (1/5/15 min) | start ${loadavg(r.loadAverage.start)}, end ${loadavg(r.loadAverage.end)} |`,
    `| k6 | ${r.k6.version}; CPU while measuring: ${r.k6.cpu ? `${pct(r.k6.cpu.average)} of one core on average, peak ${pct(r.k6.cpu.peak)}` : 'n/a'} |`,
    `| phases | connect ≤ ${r.layout.connectS} s, warm-up ${r.layout.warmupS} s (excluded), measured ${r.layout.measureS} s |`,
    `| VUs | ${r.layout.vus} (fixed: no VU starts mid-run) |`,
    `| exit code | ${r.exitCode} |`,
  );
  L.push(
    r.environment
      ? `| budgets | environment \`${r.environment.name}\`${r.environment.description ? ` (${r.environment.description})` : ''}, where it names one; production's otherwise, and beside each. Why: ${r.environment.justification} |`
      : "| budgets | production (the model's own; `--env NAME` judges by an environment's) |",
  );
  if (r.overrides.length > 0) L.push(`| budget overrides | ${r.overrides.join('; ')} |`);
  L.push('');

  // With an environment, its budget judges and production's is shown beside it (never lowered).
  const env = r.environment?.name;
  const judgedHead = env !== undefined ? `budget (${env})` : 'budget';
  const prodHead = env !== undefined ? ' production budget |' : '';
  const prodRule = env !== undefined ? '---|' : '';
  L.push('## Routes (measured phase only)', '');
  L.push(
    `| route | request | rate: planned / achieved / budget | requests | p50 | p95 | p99 | error rate | ${judgedHead} |${prodHead} result |`,
    `|---|---|---|---|---|---|---|---|---|${prodRule}---|`,
  );
  for (const x of r.routes) {
    // A route the environment does not name is judged by its production budget.
    const budget =
      env !== undefined && x.environment === undefined ? 'as production' : routeBudget(x.budget);
    const production =
      env !== undefined ? ` ${routeBudget(x.production)} at ${x.production.rps} rps |` : '';
    const result =
      x.count === 0
        ? 'not measured'
        : x.breached.length > 0
          ? `**BREACHED** (${x.breached.join('; ')})`
          : 'ok';
    L.push(
      `| ${x.route} | ${x.method} ${x.path} | ${x.rps} / ${x.achievedRps === null ? 'n/a' : x.achievedRps.toFixed(1)} / ${x.budgetRps} rps | ${x.count} | ${ms(x.p50)} | ${ms(x.p95)} | ${ms(x.p99)} | ${rate(x.errorRate)} | ${budget} |${production} ${result} |`,
    );
  }
  L.push('');
  L.push(
    `All measured requests: ${r.measuredRequests ?? 'n/a'}; error rate ${rate(r.errorRate)} (limit < 0.1 %); checks passed ${r.checksRate === null ? 'n/a' : pct(r.checksRate, 2)}.`,
    `Connection reuse: p99 of http_req_connecting ${ms(r.connectingP99)}, of http_req_tls_handshaking ${ms(r.tlsHandshakingP99)} (both must be 0).`,
    '',
  );

  L.push('## Mesh overhead per hop', '');
  if (!r.mesh) {
    L.push('Not measured (see notes).', '');
  } else {
    L.push(
      'The same `GET` through each path in turn, in a random order per iteration, during the measured phase.',
      'Overhead of a hop = request time with it − without it, paired per iteration; the "Δ of percentiles" columns subtract the paths\' own percentiles instead.',
      '',
      `| hop | kind | pairs | p50 | p99 | Δ of p50s | Δ of p99s | ${judgedHead} |${prodHead} result |`,
      `|---|---|---|---|---|---|---|---|${prodRule}---|`,
    );
    for (const h of r.mesh.hops) {
      const budget = !h.budget
        ? 'reported only'
        : env !== undefined && r.mesh.environment === undefined
          ? 'as production'
          : meshBudget(h.budget);
      const production =
        env !== undefined ? ` ${h.production ? meshBudget(h.production) : '—'} |` : '';
      const result = !h.envoy
        ? '—'
        : h.count === 0
          ? 'not measured'
          : h.breached.length > 0
            ? `**BREACHED** (${h.breached.join('; ')})`
            : 'ok';
      L.push(
        `| ${h.name} (${h.outer} − ${h.inner}) | ${h.envoy ? 'Envoy traversal' : h.name === 'ingress-gateway' ? 'ingress pod (nginx + Envoy)' : 'nginx (edge TLS)'} | ${h.count} | ${ms(h.p50)} | ${ms(h.p99)} | ${ms(h.deltaP50)} | ${ms(h.deltaP99)} | ${budget} |${production} ${result} |`,
      );
    }
    L.push('', '| path | requests | p50 | p95 | p99 |', '|---|---|---|---|---|');
    for (const p of r.mesh.paths)
      L.push(`| ${p.name} | ${p.count} | ${ms(p.p50)} | ${ms(p.p95)} | ${ms(p.p99)} |`);
    L.push('');
    if (files.chart) L.push(`![per-hop overhead](${files.chart})`, '');
  }

  L.push('## Envoy timing stats (admin /stats, measured window)', '');
  if (r.envoy.length === 0) {
    L.push('No Envoy admin endpoints were given.', '');
  } else {
    L.push(
      'Envoy records these in whole milliseconds, so sub-millisecond costs show as 0 ms steps; downstream_rq_time − upstream_rq_time is the time a request spent in that Envoy.',
      '',
      '| envoy | stat | samples | p50 | p99 |',
      '|---|---|---|---|---|',
    );
    for (const e of r.envoy) {
      if (e.error) L.push(`| ${e.name} | (scrape failed: ${e.error}) | | | |`);
      for (const s of e.stats)
        L.push(`| ${e.name} | ${s.stat} | ${s.count} | ${ms(s.p50)} | ${ms(s.p99)} |`);
    }
    L.push('');
  }

  if (r.notes.length > 0) {
    L.push('## Notes', '');
    for (const n of r.notes) L.push(`- ${n}`);
    L.push('');
  }
  L.push('## Files', '');
  for (const [what, f] of Object.entries(files)) L.push(`- ${what}: [${f}](${f})`);
  L.push('');
  return L.join('\n');
}
