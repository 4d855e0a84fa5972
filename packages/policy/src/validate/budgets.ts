/**
 * Checks of the budgets: the production mesh budget, and the budgets per environment. An
 * environment's budget stands beside a production budget (reports show both), so it may name only a
 * route that has a production budget, and the mesh only when `budgets.mesh` exists. Its values may be
 * looser or stricter than production's: production's stay in the model either way, and the reason
 * is in the environment's justification.
 */
import { own } from '../identity.ts';
import { dnsLabel, productionName } from '../patterns.ts';
import type { EnvironmentBudgets, Model } from '../schema.ts';
import { minJustificationLength } from './common.ts';
import type { Err } from './common.ts';

/** A percentile budget whose p50 is above its p99 cannot be met by any run. */
function checkOrder(
  b: { p50Ms?: number | undefined; p99Ms: number },
  path: PropertyKey[],
  err: Err,
): void {
  if (b.p50Ms !== undefined && b.p50Ms > b.p99Ms)
    err([...path, 'p50Ms'], 'p50 must not exceed p99');
}

/** One environment: its name, its justification, and that each budget stands beside production's. */
function checkEnvironment(m: Model, name: string, e: EnvironmentBudgets, err: Err): void {
  const base = ['budgets', 'environments', name];
  if (!dnsLabel.re.test(name)) err(base, dnsLabel.reason);
  else if (name === productionName)
    err(
      base,
      `'${productionName}' names the model's own budgets (routes.*.budget, budgets.mesh): choose another name`,
    );
  if (e.justification.trim().length < minJustificationLength)
    err(
      [...base, 'justification'],
      `an environment's budgets need a written justification (at least ${minJustificationLength} characters): why production's cannot hold there, and which measurement the numbers come from`,
    );
  const routes = e.routes ?? {};
  if (Object.keys(routes).length === 0 && e.mesh === undefined)
    err(base, 'declares no budget: name at least one route (routes) or the mesh (mesh)');
  for (const [route, b] of Object.entries(routes)) {
    const path = [...base, 'routes', route];
    const r = own(m.routes, route);
    if (!r) err(path, `unknown reference: no route named '${route}'`);
    else if (!r.budget)
      err(
        path,
        `routes.${route} has no production budget: declare routes.${route}.budget first (an environment's budget stands beside it, never instead of it)`,
      );
    checkOrder(b, path, err);
  }
  if (e.mesh) {
    if (!m.budgets?.mesh)
      err(
        [...base, 'mesh'],
        "budgets.mesh is not declared: declare the production mesh budget first (an environment's budget stands beside it, never instead of it)",
      );
    checkOrder(e.mesh, [...base, 'mesh'], err);
  }
}

/** The production mesh budget and every environment's budgets. */
export function checkBudgets(m: Model, err: Err): void {
  if (m.budgets?.mesh) checkOrder(m.budgets.mesh, ['budgets', 'mesh'], err);
  for (const [name, e] of Object.entries(m.budgets?.environments ?? {}))
    checkEnvironment(m, name, e, err);
}
