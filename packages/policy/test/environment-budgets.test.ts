/**
 * Budgets per environment (`budgets.environments`): validation names the field at fault, and
 * `compileK6Thresholds(model, { environment })` judges by the environment's budgets while carrying
 * the production ones beside them. The numbers below are test data, not measurements.
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  compileK6Thresholds,
  knownEnvironments,
  minJustificationLength,
  modelJsonSchema,
  parseModel,
  validateModel,
} from '../src/index.ts';
import type { BoundModel, PolicyError } from '../src/index.ts';
import { example, referenceData } from './fixtures.ts';

type Data = Record<string, unknown>;

const justification =
  'A 2-core runner holds the whole stack and k6; figures from the test fixture, not a measurement.';

/** The reference model with one `ci` environment (and any edits `f` makes to its raw data). */
function withCi(ci: Data, f: (d: Data) => void = () => undefined): Data {
  const d: Data = referenceData();
  const budgets = d['budgets'] as Data;
  budgets['environments'] = { ci };
  f(d);
  return d;
}

/** The reference model without any environment (trellis.yaml declares `ci`). */
function withoutEnvironments(): Data {
  const d: Data = referenceData();
  delete (d['budgets'] as Data)['environments'];
  return d;
}

function valid(d: Data): BoundModel {
  const r = validateModel(d);
  if (!r.ok) throw new Error(`expected a valid model: ${JSON.stringify(r.errors)}`);
  return example(r.model);
}

const ciRoutes = {
  'create-order': { rps: 7, p50Ms: 12, p99Ms: 40, maxErrorRate: 0 },
  'get-order': { rps: 13, p99Ms: 20 },
};
const ciMesh = { p50Ms: 1.5, p99Ms: 15, rps: 4 };

describe('budgets.environments: valid models', () => {
  it('accepts an environment with routes and mesh, and keeps production budgets as written', () => {
    const m = valid(
      withCi({ description: 'CI runner', justification, routes: ciRoutes, mesh: ciMesh }),
    );
    expect(m.routes['create-order']?.budget).toEqual({ rps: 500, p99Ms: 10, maxErrorRate: 0 });
    expect(m.budgets?.mesh).toEqual({ p50Ms: 0.3, p99Ms: 1, rps: 500 });
    expect(m.budgets?.environments?.['ci']?.routes?.['get-order']).toEqual({
      rps: 13,
      p99Ms: 20,
      maxErrorRate: 0,
    });
  });

  it('accepts an environment stricter than production (only its justification is required)', () => {
    expect(
      validateModel(withCi({ justification, routes: { 'get-order': { rps: 2000, p99Ms: 2 } } }))
        .errors,
    ).toEqual([]);
  });

  it('accepts an environment that names only the mesh', () => {
    expect(validateModel(withCi({ justification, mesh: ciMesh })).errors).toEqual([]);
  });

  it('accepts the same model through YAML', () => {
    const r = parseModel(stringify(withCi({ justification, routes: ciRoutes })));
    expect(r.errors).toEqual([]);
  });
});

/** One kind of invalid environment, and the one error that must come out. */
interface Case {
  kind: string;
  data: () => Data;
  error: PolicyError;
}

const justificationReason = `an environment's budgets need a written justification (at least ${minJustificationLength} characters): why production's cannot hold there, and which measurement the numbers come from`;

const cases: Case[] = [
  {
    kind: 'missing justification',
    data: () => withCi({ routes: ciRoutes }),
    error: { path: 'budgets.environments.ci.justification', reason: 'required field is missing' },
  },
  {
    kind: 'justification too short',
    data: () => withCi({ justification: 'slow box', routes: ciRoutes }),
    error: { path: 'budgets.environments.ci.justification', reason: justificationReason },
  },
  {
    kind: 'justification of blanks',
    data: () => withCi({ justification: ' '.repeat(40), routes: ciRoutes }),
    error: { path: 'budgets.environments.ci.justification', reason: justificationReason },
  },
  {
    kind: 'unknown route',
    data: () => withCi({ justification, routes: { 'list-orders': { rps: 1, p99Ms: 9 } } }),
    error: {
      path: 'budgets.environments.ci.routes.list-orders',
      reason: "unknown reference: no route named 'list-orders'",
    },
  },
  {
    kind: 'route without a production budget',
    data: () =>
      withCi({ justification, routes: { 'get-order': { rps: 1, p99Ms: 9 } } }, (d) => {
        const routes = d['routes'] as Record<string, Data>;
        delete routes['get-order']?.['budget'];
      }),
    error: {
      path: 'budgets.environments.ci.routes.get-order',
      reason:
        "routes.get-order has no production budget: declare routes.get-order.budget first (an environment's budget stands beside it, never instead of it)",
    },
  },
  {
    kind: 'mesh without a production mesh budget',
    data: () =>
      withCi({ justification, mesh: ciMesh }, (d) => {
        delete (d['budgets'] as Data)['mesh'];
      }),
    error: {
      path: 'budgets.environments.ci.mesh',
      reason:
        "budgets.mesh is not declared: declare the production mesh budget first (an environment's budget stands beside it, never instead of it)",
    },
  },
  {
    kind: 'no budget at all',
    data: () => withCi({ justification }),
    error: {
      path: 'budgets.environments.ci',
      reason: 'declares no budget: name at least one route (routes) or the mesh (mesh)',
    },
  },
  {
    kind: 'route p50 above p99',
    data: () => withCi({ justification, routes: { 'get-order': { rps: 1, p50Ms: 30, p99Ms: 9 } } }),
    error: {
      path: 'budgets.environments.ci.routes.get-order.p50Ms',
      reason: 'p50 must not exceed p99',
    },
  },
  {
    kind: 'mesh p50 above p99',
    data: () => withCi({ justification, mesh: { p50Ms: 3, p99Ms: 2 } }),
    error: { path: 'budgets.environments.ci.mesh.p50Ms', reason: 'p50 must not exceed p99' },
  },
  {
    kind: 'unknown field in an environment',
    data: () => withCi({ justification, routes: ciRoutes, p99Ms: 3 }),
    error: { path: 'budgets.environments.ci.p99Ms', reason: 'unknown field' },
  },
  {
    kind: 'negative budget value',
    data: () => withCi({ justification, routes: { 'get-order': { rps: 1, p99Ms: -1 } } }),
    error: {
      path: 'budgets.environments.ci.routes.get-order.p99Ms',
      reason: 'must be greater than 0',
    },
  },
  {
    kind: 'zero budget value',
    data: () => withCi({ justification, mesh: { p50Ms: 0, p99Ms: 2 } }),
    error: { path: 'budgets.environments.ci.mesh.p50Ms', reason: 'must be greater than 0' },
  },
  {
    kind: 'error rate above 1',
    data: () =>
      withCi({ justification, routes: { 'get-order': { rps: 1, p99Ms: 9, maxErrorRate: 2 } } }),
    error: {
      path: 'budgets.environments.ci.routes.get-order.maxErrorRate',
      reason: 'must be at most 1',
    },
  },
  {
    kind: 'environment named production',
    data: () => {
      const d: Data = referenceData();
      (d['budgets'] as Data)['environments'] = { production: { justification, mesh: ciMesh } };
      return d;
    },
    error: {
      path: 'budgets.environments.production',
      reason:
        "'production' names the model's own budgets (routes.*.budget, budgets.mesh): choose another name",
    },
  },
  {
    kind: 'environment name not a DNS label',
    data: () => {
      const d: Data = referenceData();
      (d['budgets'] as Data)['environments'] = { CI_runner: { justification, mesh: ciMesh } };
      return d;
    },
    error: {
      path: 'budgets.environments.CI_runner',
      reason:
        "must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters",
    },
  },
];

describe('budgets.environments: invalid models name the field', () => {
  for (const c of cases)
    it(`rejects: ${c.kind}`, () => {
      const d = c.data();
      for (const r of [parseModel(stringify(d)), validateModel(d)]) {
        expect(r.ok).toBe(false);
        expect(r.errors).toEqual([c.error]);
      }
    });
});

describe('budgets.environments: properties of validation', () => {
  const field = fc.constantFrom('rps', 'p99Ms');
  const positive = fc.double({ min: 0.001, max: 1e6, noNaN: true });

  it('any positive budgets with a justification validate, and production stays as written', () => {
    const production = valid(withoutEnvironments());
    fc.assert(
      fc.property(positive, positive, positive, (rps, p50, extra) => {
        const ci = {
          justification,
          routes: { 'get-order': { rps, p50Ms: p50, p99Ms: p50 + extra } },
        };
        const m = valid(withCi(ci));
        expect(m.routes).toEqual(production.routes);
        expect(m.budgets?.mesh).toEqual(production.budgets?.mesh);
      }),
      { numRuns: 100 },
    );
  });

  it('a zero, negative or non-finite value is refused at its own path', () => {
    const bad = fc.oneof(
      fc.constant(0),
      fc.double({ max: -Number.MIN_VALUE, noNaN: true }),
      fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY),
    );
    fc.assert(
      fc.property(field, bad, (f, v) => {
        const b: Data = { rps: 5, p99Ms: 20, [f]: v };
        const r = validateModel(withCi({ justification, routes: { 'create-order': b } }));
        expect(r.ok).toBe(false);
        expect(r.errors.map((e) => e.path)).toEqual([
          `budgets.environments.ci.routes.create-order.${f}`,
        ]);
      }),
      { numRuns: 100 },
    );
  });

  it('a route name the model does not declare is refused, naming it', () => {
    const known = new Set(['create-order', 'get-order']);
    const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/).filter((n) => !known.has(n));
    fc.assert(
      fc.property(name, (n) => {
        const r = validateModel(withCi({ justification, routes: { [n]: { rps: 1, p99Ms: 9 } } }));
        expect(r.errors).toEqual([
          {
            path: `budgets.environments.ci.routes.${n}`,
            reason: `unknown reference: no route named '${n}'`,
          },
        ]);
      }),
      { numRuns: 100 },
    );
  });
});

describe('budgets.environments in the published JSON Schema', () => {
  const schema = new Ajv2020({ strict: false, allErrors: true }).compile(modelJsonSchema());

  it('accepts what validation accepts', () => {
    expect(schema(withCi({ justification, routes: ciRoutes, mesh: ciMesh }))).toBe(true);
  });

  it('rejects a missing or short justification and a reserved name, as validation does', () => {
    for (const d of [
      withCi({ routes: ciRoutes }),
      withCi({ justification: 'slow box', routes: ciRoutes }),
    ]) {
      expect(validateModel(d).ok).toBe(false);
      expect(schema(d)).toBe(false);
    }
    const d: Data = referenceData();
    (d['budgets'] as Data)['environments'] = { production: { justification, mesh: ciMesh } };
    expect(schema(d)).toBe(false);
    expect(schema.errors?.map((e) => e.keyword)).toContain('pattern');
  });
});

describe('compileK6Thresholds with an environment', () => {
  const model = valid(withCi({ description: 'CI runner', justification, routes: ciRoutes }));
  const durations = (k: ReturnType<typeof compileK6Thresholds>) =>
    k.thresholds
      .filter((t) => t.metric === 'http_req_duration' || t.metric === 'trellis_mesh_overhead')
      .map((t) => [t.tags.route ?? t.metric, t.statistic, t.value]);

  it('without an environment, judges by production and says so', () => {
    const k = compileK6Thresholds(model);
    expect(k.environment).toBeUndefined();
    expect(durations(k)).toEqual([
      ['create-order', { percentile: 99 }, 10],
      ['get-order', { percentile: 99 }, 5],
      ['trellis_mesh_overhead', { percentile: 50 }, 0.3],
      ['trellis_mesh_overhead', { percentile: 99 }, 1],
    ]);
    for (const r of k.routes) {
      expect(r.environment).toBeUndefined();
      expect({ rps: r.rps, p99Ms: r.p99Ms, maxErrorRate: r.maxErrorRate }).toEqual({
        rps: r.production.rps,
        p99Ms: r.production.p99Ms,
        maxErrorRate: r.production.maxErrorRate,
      });
    }
  });

  it("judges the routes the environment names by its budgets, and carries production's beside", () => {
    const k = compileK6Thresholds(model, { environment: 'ci' });
    expect(k.environment).toEqual({ name: 'ci', description: 'CI runner', justification });
    expect(durations(k)).toEqual([
      ['create-order', { percentile: 50 }, 12],
      ['create-order', { percentile: 99 }, 40],
      ['get-order', { percentile: 99 }, 20],
      // The environment names no mesh budget: production's judges the mesh.
      ['trellis_mesh_overhead', { percentile: 50 }, 0.3],
      ['trellis_mesh_overhead', { percentile: 99 }, 1],
    ]);
    expect(k.routes).toEqual([
      {
        route: 'create-order',
        method: 'POST',
        path: '/orders',
        hosts: ['localhost'],
        rps: 7,
        p50Ms: 12,
        p99Ms: 40,
        maxErrorRate: 0,
        environment: 'ci',
        production: { rps: 500, p99Ms: 10, maxErrorRate: 0 },
      },
      {
        route: 'get-order',
        method: 'GET',
        path: '/orders/{id}',
        hosts: ['localhost'],
        rps: 13,
        p99Ms: 20,
        maxErrorRate: 0,
        environment: 'ci',
        production: { rps: 1000, p99Ms: 5, maxErrorRate: 0 },
      },
    ]);
    expect(k.meshOverhead).toEqual({
      metric: 'trellis_mesh_overhead',
      p50Ms: 0.3,
      p99Ms: 1,
      rps: 500,
      production: { p50Ms: 0.3, p99Ms: 1, rps: 500 },
    });
  });

  it("judges the mesh by the environment's mesh budget when it has one", () => {
    const m = valid(
      withCi({ justification, routes: { 'get-order': ciRoutes['get-order'] }, mesh: ciMesh }),
    );
    const k = compileK6Thresholds(m, { environment: 'ci' });
    expect(k.meshOverhead).toEqual({
      metric: 'trellis_mesh_overhead',
      ...ciMesh,
      environment: 'ci',
      production: { p50Ms: 0.3, p99Ms: 1, rps: 500 },
    });
    // create-order is not named by ci: production judges it, and no environment is claimed for it.
    const create = k.routes.find((r) => r.route === 'create-order');
    expect(create?.environment).toBeUndefined();
    expect(create?.p99Ms).toBe(10);
  });

  it('refuses an environment the model does not declare, naming the declared ones', () => {
    expect(() => compileK6Thresholds(model, { environment: 'staging' })).toThrow(
      "compileK6Thresholds: environment 'staging' is not declared in budgets.environments (known: production, ci; production is the model's own budgets)",
    );
    expect(() => compileK6Thresholds(valid(withoutEnvironments()), { environment: 'ci' })).toThrow(
      "environment 'ci' is not declared in budgets.environments (known: production; production is the model's own budgets)",
    );
  });

  it("'production' judges by the model's own budgets, exactly as no environment does", () => {
    expect(compileK6Thresholds(model, { environment: 'production' })).toEqual(
      compileK6Thresholds(model),
    );
    expect(knownEnvironments(model)).toEqual(['production', 'ci']);
  });

  it('never changes the production figures, whatever the environment says (property)', () => {
    const budget = fc.record(
      {
        rps: fc.double({ min: 0.1, max: 5000, noNaN: true }),
        p50Ms: fc.double({ min: 0.01, max: 10, noNaN: true }),
        p99Ms: fc.double({ min: 10, max: 1000, noNaN: true }),
      },
      { requiredKeys: ['rps', 'p99Ms'] },
    );
    const production = compileK6Thresholds(valid(withoutEnvironments()));
    fc.assert(
      fc.property(
        fc.option(budget, { nil: undefined }),
        fc.option(budget, { nil: undefined }),
        (create, get) => {
          const routes: Record<string, unknown> = {};
          if (create) routes['create-order'] = create;
          if (get) routes['get-order'] = get;
          const m = valid(withCi({ justification, routes, mesh: ciMesh }));
          const k = compileK6Thresholds(m, { environment: 'ci' });
          expect(k.routes.map((r) => r.production)).toEqual(
            production.routes.map((r) => r.production),
          );
          expect(k.meshOverhead?.production).toEqual(production.meshOverhead?.production);
          // Each route is judged by the environment exactly when the environment names it.
          for (const r of k.routes) {
            const named = r.route === 'create-order' ? create : get;
            expect(r.environment).toBe(named ? 'ci' : undefined);
            expect(r.p99Ms).toBe(named ? named.p99Ms : r.production.p99Ms);
          }
        },
      ),
      { numRuns: 50 },
    );
  });
});
