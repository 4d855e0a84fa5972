/**
 * `--budget-override`: change a budget for one run without editing the model, e.g. to prove the gate
 * (`create-order:p99=0.01`) or to try a looser mesh budget (`mesh:p50=0.5,p99=2`). Overrides are an
 * input of policy's `bind`, the one place the model is changed; the result is validated like the
 * model itself, and the report lists every override. Also the checks of `--environment` against
 * the model and the overrides.
 */
import {
  bind,
  compileK6Thresholds,
  formatErrors,
  type BoundModel,
  type BudgetOverride,
  type K6Thresholds,
  type ValidModel,
} from '@trellis/policy';

export type { BudgetOverride };

const fields: Record<string, keyof Omit<BudgetOverride, 'target'>> = {
  p50: 'p50Ms',
  p99: 'p99Ms',
  rps: 'rps',
  errors: 'maxErrorRate',
};

/** Parse `target:field=value[,field=value]` (fields p50, p99 in ms; rps; errors as a rate 0–1). */
export function parseBudgetOverride(spec: string): BudgetOverride {
  const m = /^([A-Za-z0-9._-]+):(.+)$/.exec(spec.trim());
  if (!m?.[1] || !m[2])
    throw new Error(
      `--budget-override: '${spec}' is not <route|mesh>:<field>=<value>[,...] (e.g. create-order:p99=0.01)`,
    );
  const out: BudgetOverride = { target: m[1] };
  for (const part of m[2].split(',')) {
    const [k = '', v = '', ...rest] = part.split('=').map((s) => s.trim());
    const field = fields[k];
    if (!field || rest.length > 0)
      throw new Error(
        `--budget-override ${spec}: '${part}' must be one of ${Object.keys(fields).join(', ')} = a number`,
      );
    const n = Number(v);
    if (v === '' || !Number.isFinite(n))
      throw new Error(`--budget-override ${spec}: ${k} needs a number, got '${v}'`);
    out[field] = n;
  }
  return out;
}

/**
 * The model with the overrides applied (none: unchanged), validated again (an invalid value names
 * its field). The model is bound to the `example` environment: a load run's thresholds need only
 * routes and budgets, which no environment moves.
 */
export function applyBudgetOverrides(
  model: ValidModel,
  overrides: readonly BudgetOverride[],
): BoundModel {
  const r = bind(model, { kind: 'example', budgets: overrides });
  if (r.ok) return r.model;
  // `environment.budgets[i]` is the i-th --budget-override: name it as the user wrote it.
  const errors = r.errors.map((e) => {
    const i = /^environment\.budgets\[(\d+)\]$/.exec(e.path)?.[1];
    const o = i === undefined ? undefined : overrides[Number(i)];
    return o ? { ...e, path: `--budget-override ${describeOverride(o)}` } : e;
  });
  throw new Error(`--budget-override made the model invalid:\n${formatErrors(errors)}`);
}

/** A one-line description of an override, for the report. */
export function describeOverride(o: BudgetOverride): string {
  const parts = Object.entries(fields)
    .filter(([, f]) => o[f] !== undefined)
    .map(([k, f]) => `${k}=${String(o[f])}`);
  return `${o.target}: ${parts.join(', ')}`;
}

/**
 * Throws, naming the option (`--env`) and the known environments, unless `name` is `production` (the
 * model's own budgets) or declared in the model's `budgets.environments`.
 */
export function checkEnvironment(model: ValidModel, name: string, option = '--env'): void {
  try {
    compileK6Thresholds(applyBudgetOverrides(model, []), { environment: name });
  } catch (err) {
    throw new Error(
      `${option} ${name}: ${(err as Error).message.replace(/^compileK6Thresholds: /, '')}`,
      { cause: err },
    );
  }
}

/**
 * An override changes a production budget; where the environment's own budget judges the same
 * route (or the mesh), the override would change nothing the run is judged by, so it is refused
 * rather than silently ignored.
 */
export function refuseHiddenOverrides(
  compiled: K6Thresholds,
  overrides: readonly BudgetOverride[],
): void {
  for (const o of overrides) {
    const judgedBy =
      o.target === 'mesh'
        ? compiled.meshOverhead?.environment
        : compiled.routes.find((r) => r.route === o.target)?.environment;
    if (judgedBy !== undefined)
      throw new Error(
        `--budget-override ${describeOverride(o)}: environment '${judgedBy}' judges ${o.target} by its own budget, so overriding the production budget would change nothing; change budgets.environments.${judgedBy} in the model, or run with --env production`,
      );
  }
}
