/**
 * Stack configuration of infra/local, read once and validated at runtime; a wrong value fails with a
 * message naming the key (`trellis-local:basePort: ...`) before any resource is planned.
 */
import * as pulumi from '@pulumi/pulumi';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { loadModelFile } from '@trellis/components/model';
import { knownEnvironments, sloTimeScaleProblem, type ValidModel } from '@trellis/policy';

const schema = z.strictObject({
  basePort: z.coerce.number().int().min(1024).max(64000),
  model: z.string().min(1).default('../../trellis.yaml'),
  region: z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a lower-case region name'),
  certValidHours: z.coerce
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  /** Bump to re-issue every workload certificate now. */
  rotation: z.coerce.number().int().min(0).default(0),
  /** Bump to re-issue nginx's edge certificate now (nginx reloads gracefully; docs/local.md). */
  edgeRotation: z.coerce.number().int().min(0).default(0),
  /**
   * Run every workload as a pod (ADR 0012; needs root). `false` runs them on the host's loopback
   * (no isolation; kept to measure what pods cost).
   */
  pods: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('true')
    .transform((v) => v === 'true'),
  /** Prometheus's scrape and rule evaluation interval. */
  scrapeInterval: z
    .string()
    .regex(/^[1-9][0-9]*(ms|s|m)$/, 'must be a duration such as 15s, 2s or 1m')
    .default('15s'),
  /**
   * Test stacks only (ADR 0025): divide every SLO window and `for` by this, so that a burn alert
   * fires and clears within a test run. 1 (the default) is production's timing.
   */
  sloTimeScale: z.coerce.number().int('must be a whole number').min(1).default(1),
  /**
   * The environment of the model's `budgets.environments` whose budgets the SLO rules judge by
   * (e.g. `ci` for a stack on a 2-core runner; ADR 0025). `production`: the model's own budgets.
   */
  sloBudgets: z.string().min(1).default('production'),
  /**
   * Test stacks only (ADR 0025): backend sidecars get an inert fault delay filter that a test turns
   * on through the sidecar's admin runtime.
   */
  faultInjection: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('false')
    .transform((v) => v === 'true'),
});

/** The configuration as read, checked key by key and then across keys. */
export const localConfigSchema = schema.superRefine((c, ctx) => {
  const problem = sloTimeScaleProblem({ factor: c.sloTimeScale, scrapeInterval: c.scrapeInterval });
  if (problem !== undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['sloTimeScale'],
      message: `${problem} (trellis-local:scrapeInterval is ${c.scrapeInterval})`,
    });
});

/** `trellis-local:sloBudgets: …` when the model declares no such budgets environment. */
export function sloBudgetsProblem(model: ValidModel, name: string): string | undefined {
  const known = knownEnvironments(model);
  return known.includes(name)
    ? undefined
    : `trellis-local:sloBudgets: '${name}' is not an environment of the model's budgets (known: ${known.join(', ')})`;
}

/** `trellis-local:<key>: <message>` for each problem of `raw`, or the parsed configuration. */
export function parseLocalConfig(
  raw: Record<string, unknown>,
): { ok: true; config: z.output<typeof schema> } | { ok: false; errors: string[] } {
  const parsed = localConfigSchema.safeParse(raw);
  if (parsed.success) return { ok: true, config: parsed.data };
  return {
    ok: false,
    errors: parsed.error.issues.map(
      (i) => `trellis-local:${i.path.join('.') || '(root)'}: ${i.message}`,
    ),
  };
}

/** The validated configuration of a local stack, with the parsed model (as written). */
export interface LocalConfig {
  stack: string;
  region: string;
  /** The stack's first port; every other is `basePort` + an offset (`localPortOffsets`). */
  basePort: number;
  certValidHours: number;
  rotation: number;
  /** The edge certificate's rotation counter (`trellis-local:edgeRotation`). @default 0 */
  edgeRotation: number;
  /** Whether the workloads run as pods (`trellis-local:pods`). @default true */
  pods: boolean;
  /** Prometheus's scrape and evaluation interval (`trellis-local:scrapeInterval`). @default '15s' */
  scrapeInterval: string;
  /** SLO time scale of a test stack (`trellis-local:sloTimeScale`, ADR 0025). @default 1 */
  sloTimeScale: number;
  /** Inert fault filters on the backend sidecars (`trellis-local:faultInjection`). @default false */
  faultInjection: boolean;
  /** The budgets environment the SLO rules judge by (`trellis-local:sloBudgets`). @default production */
  sloBudgets: string;
  model: ValidModel;
  modelPath: string;
  /** `<repo>/.trellis/<stack>`: everything this stack writes. */
  stackDir: string;
}

const repoRoot = resolve(import.meta.dirname, '../..');

/** Read and validate this stack's `trellis-local:*` configuration, and the model it names. */
export function loadConfig(): LocalConfig {
  const cfg = new pulumi.Config('trellis-local');
  const raw: Record<string, unknown> = {};
  for (const key of Object.keys(schema.shape)) {
    const v = cfg.get(key);
    if (v !== undefined) raw[key] = v;
  }
  const parsed = parseLocalConfig(raw);
  if (!parsed.ok) throw new Error(`invalid stack config:\n  ${parsed.errors.join('\n  ')}`);
  const c = parsed.config;
  const modelPath = isAbsolute(c.model) ? c.model : resolve(import.meta.dirname, c.model);
  const model = loadModelFile(modelPath, 'trellis-local:model');
  const problem = sloBudgetsProblem(model, c.sloBudgets);
  if (problem !== undefined) throw new Error(`invalid stack config:\n  ${problem}`);
  const stack = pulumi.getStack();
  return {
    stack,
    region: c.region,
    basePort: c.basePort,
    certValidHours: c.certValidHours,
    rotation: c.rotation,
    edgeRotation: c.edgeRotation,
    pods: c.pods,
    scrapeInterval: c.scrapeInterval,
    sloTimeScale: c.sloTimeScale,
    faultInjection: c.faultInjection,
    sloBudgets: c.sloBudgets,
    model,
    modelPath,
    stackDir: resolve(repoRoot, '.trellis', stack),
  };
}
