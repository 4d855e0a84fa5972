/** Budget overrides, applied by `bind` to its copy of the model before it is validated again. */
import { formatPath } from '../errors.ts';
import type { PolicyError } from '../errors.ts';
import type { Model } from '../schema.ts';
import type { BudgetOverride } from './types.ts';

type Budget = Record<string, number>;

/**
 * Apply `overrides` in order to `data` (a copy of the model, changed in place). The values are
 * checked by validation afterwards (e.g. `routes.get-order.budget.p99Ms`); what validation cannot
 * see (an unknown route, an error rate for the mesh) comes back here, at `environment.budgets[i]`.
 */
export function applyBudgets(data: Model, overrides: readonly BudgetOverride[]): PolicyError[] {
  const errors: PolicyError[] = [];
  overrides.forEach((o, i) => {
    const path = formatPath(['environment', 'budgets', i]);
    const { target, ...values } = o;
    if (target === 'mesh') {
      if (values.maxErrorRate !== undefined) {
        errors.push({ path, reason: 'mesh: the mesh budget has no error rate' });
        return;
      }
      // Partial until validation checks it (a model without a mesh budget needs p50 and p99).
      const mesh = { ...(data.budgets?.mesh as Budget | undefined), ...values };
      data.budgets = { ...data.budgets, mesh: mesh as NonNullable<Model['budgets']>['mesh'] };
      return;
    }
    const route = Object.hasOwn(data.routes, target) ? data.routes[target] : undefined;
    if (!route) {
      errors.push({
        path,
        reason: `no route '${target}' in the model (routes: ${Object.keys(data.routes).join(', ')}; or mesh)`,
      });
      return;
    }
    route.budget = { ...route.budget, ...values } as NonNullable<typeof route.budget>;
  });
  return errors;
}
