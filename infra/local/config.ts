/**
 * Stack configuration of infra/local, read once and validated at runtime; a wrong value fails with a
 * message naming the key (`trellis-local:basePort: ...`) before any resource is planned.
 */
import * as pulumi from '@pulumi/pulumi';
import { isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { loadModelFile } from '@trellis/components/model';
import type { ValidModel } from '@trellis/policy';

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
  /**
   * Run every workload as a pod (ADR 0012; needs root). `false` runs them on the host's loopback
   * (no isolation; kept to measure what pods cost).
   */
  pods: z
    .enum(['true', 'false'], { message: 'must be true or false' })
    .default('true')
    .transform((v) => v === 'true'),
});

/** The validated configuration of a local stack, with the parsed model (as written). */
export interface LocalConfig {
  stack: string;
  region: string;
  /** The stack's first port; every other is `basePort` + an offset (`localPortOffsets`). */
  basePort: number;
  certValidHours: number;
  rotation: number;
  /** Whether the workloads run as pods (`trellis-local:pods`). @default true */
  pods: boolean;
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
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const msgs = parsed.error.issues.map(
      (i) => `trellis-local:${i.path.join('.') || '(root)'}: ${i.message}`,
    );
    throw new Error(`invalid stack config:\n  ${msgs.join('\n  ')}`);
  }
  const c = parsed.data;
  const modelPath = isAbsolute(c.model) ? c.model : resolve(import.meta.dirname, c.model);
  const model = loadModelFile(modelPath, 'trellis-local:model');
  const stack = pulumi.getStack();
  return {
    stack,
    region: c.region,
    basePort: c.basePort,
    certValidHours: c.certValidHours,
    rotation: c.rotation,
    pods: c.pods,
    model,
    modelPath,
    stackDir: resolve(repoRoot, '.trellis', stack),
  };
}
