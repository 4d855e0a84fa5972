/**
 * `./trellis load`: run a k6 scenario against the local stack (or any target described in a JSON
 * file), with thresholds compiled from the model's budgets, and write `reports/<timestamp>/`. The
 * exit code is k6's, unchanged: 0 when every budget held, 99 when one was broken.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  checkEnvironment,
  checkTarget,
  DEFAULT_MODEL,
  loadModel,
  parseBudgetOverride,
  parseDuration,
  parseScenario,
  runGateSelfCheck,
  runLoad,
  scenarioDefaults,
  scenarioNames,
  targetFromStackOutputs,
  withStackCpu,
  type LoadTarget,
} from '@trellis/load-tests';
import { ROOT, stackDir } from '../stack.ts';
import { stackOutputs } from './up.ts';

const usage = `usage: ./trellis load [--scenario ${scenarioNames.join('|')}] [--stack S | --target FILE]
       ./trellis load --scenario gate [--out DIR]   (the regression gate's self-check; no stack needed)
                     [--rps N] [--duration D] [--warmup D] [--mesh-rate N] [--as USER] [--no-abort]
                     [--env NAME] [--budget-override ROUTE|mesh:FIELD=VALUE[,...]]...
                     [--model FILE] [--out DIR]`;

/** The options of `load`, parsed and checked (each error names its option). */
export interface LoadArgs {
  scenario: (typeof scenarioNames)[number];
  stack: string;
  targetFile?: string;
  rps?: number;
  durationS?: number;
  warmupS?: number;
  meshRate?: number;
  as: string;
  /** `--no-abort`: measure the whole duration after a breach (exit 99 all the same). */
  noAbort: boolean;
  budgetOverrides: string[];
  /**
   * `--env` (or `--environment`): judge by this environment's budgets (`budgets.environments` in the
   * model); absent or `production`: by the model's own budgets.
   */
  environment?: string;
  model: string;
  out: string;
}

function positiveNumber(v: string, opt: string): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || n <= 0)
    throw new Error(`${opt}: '${v}' must be a number above zero`);
  return n;
}

const options = {
  scenario: { type: 'string', default: 'steady' },
  stack: { type: 'string', default: 'local' },
  target: { type: 'string' },
  rps: { type: 'string' },
  duration: { type: 'string' },
  warmup: { type: 'string' },
  'mesh-rate': { type: 'string' },
  as: { type: 'string', default: 'alice' },
  'no-abort': { type: 'boolean', default: false },
  'budget-override': { type: 'string', multiple: true, default: [] as string[] },
  env: { type: 'string' },
  environment: { type: 'string' },
  model: { type: 'string', default: DEFAULT_MODEL },
  out: { type: 'string', default: join(ROOT, 'reports') },
} as const;

/** Parse the arguments of `load`. */
export function parseLoadArgs(args: string[]): LoadArgs {
  let values: ReturnType<typeof parseArgs<{ args: string[]; options: typeof options }>>['values'];
  try {
    values = parseArgs({ args, options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${usage}`, { cause: err });
  }
  // Fail on a bad override before anything starts.
  for (const o of values['budget-override']) parseBudgetOverride(o);
  // `--environment` is the long spelling of `--env`; two different names are a mistake, not a choice.
  if (
    values.env !== undefined &&
    values.environment !== undefined &&
    values.env !== values.environment
  )
    throw new Error(
      `--env ${values.env} and --environment ${values.environment} name different environments: give one`,
    );
  const environment = values.env ?? values.environment;
  return {
    scenario: parseScenario(values.scenario),
    stack: values.stack,
    ...(values.target !== undefined ? { targetFile: resolve(values.target) } : {}),
    ...(values.rps !== undefined ? { rps: positiveNumber(values.rps, '--rps') } : {}),
    ...(values.duration !== undefined
      ? { durationS: parseDuration(values.duration, '--duration') }
      : {}),
    ...(values.warmup !== undefined ? { warmupS: parseDuration(values.warmup, '--warmup') } : {}),
    ...(values['mesh-rate'] !== undefined
      ? { meshRate: positiveNumber(values['mesh-rate'], '--mesh-rate') }
      : {}),
    as: values.as,
    noAbort: values['no-abort'],
    budgetOverrides: [...values['budget-override']],
    // `production` is the model's own budgets: the same run as without the option.
    ...(environment !== undefined && environment !== 'production' ? { environment } : {}),
    model: resolve(values.model),
    out: resolve(values.out),
  };
}

/** `load [...]`: see the module comment; `--help` prints the scenarios and their defaults. */
export async function load(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    const rows = scenarioNames.map((n) => {
      const d = scenarioDefaults[n];
      return `  ${n.padEnd(12)} ${d.rps} rps, ${d.durationS} s (+${d.warmupS} s warm-up): ${d.summary}`;
    });
    process.stdout.write(`${usage}\n\nScenarios:\n${rows.join('\n')}\n`);
    return 0;
  }
  if (args.join(' ').match(/(^|\s)--scenario(=|\s)gate(\s|$)/)) return gate(args);
  const a = parseLoadArgs(args);
  const model = loadModel(a.model);
  // Before the stack's outputs are read: an environment the model does not declare is named now.
  if (a.environment !== undefined) checkEnvironment(model, a.environment, '--env');
  let target: LoadTarget;
  if (a.targetFile) {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(a.targetFile, 'utf8'));
    } catch (err) {
      throw new Error(`--target ${a.targetFile}: ${(err as Error).message}`, { cause: err });
    }
    target = checkTarget(raw, a.targetFile);
  } else {
    // --show-secrets: the token form needs the principal's credentials; they go to k6's environment only.
    target = targetFromStackOutputs(await stackOutputs(a.stack, true), { model, as: a.as });
  }
  const load = () =>
    runLoad({
      scenario: a.scenario,
      target,
      model,
      reportsDir: a.out,
      budgetOverrides: a.budgetOverrides,
      ...(a.environment !== undefined ? { environment: a.environment } : {}),
      command: `./trellis load ${args.join(' ')}`.trim(),
      ...(a.rps !== undefined ? { rps: a.rps } : {}),
      ...(a.durationS !== undefined ? { durationS: a.durationS } : {}),
      ...(a.warmupS !== undefined ? { warmupS: a.warmupS } : {}),
      ...(a.meshRate !== undefined ? { meshRate: a.meshRate } : {}),
      ...(a.noAbort ? { abortOnFail: false } : {}),
    });
  // A local stack's processes are on this machine: account their CPU per request too.
  const r = a.targetFile ? await load() : await withStackCpu(join(stackDir(a.stack), 'run'), load);
  return r.exitCode;
}

/**
 * `load --scenario gate`: the regression gate's self-check (A/A must pass, an injected 2 ms sidecar
 * delay and a CPU burn must fail it; ADR 0013), on its own side-by-side stack. Exit 0 or 99.
 */
async function gate(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      scenario: { type: 'string' },
      out: { type: 'string', default: join(ROOT, 'reports') },
    },
    strict: true,
    allowPositionals: false,
  });
  const r = await runGateSelfCheck({
    reportsDir: join(resolve(values.out), 'gate'),
    command: `./trellis load ${args.join(' ')}`.trim(),
  });
  for (const p of r.problems) process.stderr.write(`gate: ${p}\n`);
  process.stderr.write(
    `gate: ${r.exitCode === 0 ? 'PASS' : 'FAIL'}; report: ${join(r.reportDir, 'gate.md')}\n`,
  );
  return r.exitCode;
}
