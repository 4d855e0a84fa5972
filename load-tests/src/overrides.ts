/**
 * `--budget-override`: change a budget for one run without editing the model, e.g. to prove the gate
 * (`create-order:p99=0.01`) or to try a looser mesh budget (`mesh:p50=0.5,p99=2`). The result is
 * validated like the model itself, and the report lists every override.
 */
import { formatErrors, validateModel, type ValidModel } from '@trellis/policy';

/** One parsed override: a route's (or the mesh's) budget fields. */
export interface BudgetOverride {
  /** A route name, or `mesh`. */
  target: string;
  p50Ms?: number;
  p99Ms?: number;
  rps?: number;
  maxErrorRate?: number;
}

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

/** The model with the overrides applied, validated again (an invalid value names its field). */
export function applyBudgetOverrides(
  model: ValidModel,
  overrides: readonly BudgetOverride[],
): ValidModel {
  if (overrides.length === 0) return model;
  const data = structuredClone(model) as unknown as {
    routes: Record<string, { budget?: Record<string, number> }>;
    budgets?: { mesh?: Record<string, number> };
  };
  for (const o of overrides) {
    const { target, ...values } = o;
    if (target === 'mesh') {
      if (values.maxErrorRate !== undefined)
        throw new Error('--budget-override mesh: the mesh budget has no error rate');
      const mesh = data.budgets?.mesh ?? {};
      data.budgets = { ...data.budgets, mesh: { ...mesh, ...values } };
      continue;
    }
    const route = Object.hasOwn(data.routes, target) ? data.routes[target] : undefined;
    if (!route)
      throw new Error(
        `--budget-override: no route '${target}' in the model (routes: ${Object.keys(data.routes).join(', ')}; or mesh)`,
      );
    route.budget = { ...route.budget, ...values };
  }
  const r = validateModel(data);
  if (!r.ok)
    throw new Error(`--budget-override made the model invalid:\n${formatErrors(r.errors)}`);
  return r.model;
}

/** A one-line description of an override, for the report. */
export function describeOverride(o: BudgetOverride): string {
  const parts = Object.entries(fields)
    .filter(([, f]) => o[f] !== undefined)
    .map(([k, f]) => `${k}=${String(o[f])}`);
  return `${o.target}: ${parts.join(', ')}`;
}
