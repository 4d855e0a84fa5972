/** Shared test fixtures: the reference model, loaded from the repository root. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { bindOrThrow, parseModel } from '../src/index.ts';
import type { BoundModel, ModelInput, ValidModel } from '../src/index.ts';

/** Path of the reference model. */
export const referencePath = fileURLToPath(new URL('../../../trellis.yaml', import.meta.url));

/** The reference model's YAML text. */
export const referenceText = readFileSync(referencePath, 'utf8');

/** A fresh plain-data copy of the reference model, to mutate in a test. */
export function referenceData(): ModelInput & Record<string, unknown> {
  return parse(referenceText) as ModelInput & Record<string, unknown>;
}

/** The reference model, validated. */
export function referenceModel(): ValidModel {
  const r = parseModel(referenceText);
  if (!r.ok) throw new Error(`reference model invalid: ${JSON.stringify(r.errors)}`);
  return r.model;
}

/**
 * `model` bound to the documented example plan (loopback, files under /srv): what the compilers take
 * where a test is about no environment in particular. The example binding renames nothing.
 */
export function example(model: ValidModel): BoundModel {
  return bindOrThrow(model, { kind: 'example', baseDir: '/srv' }, 'example plan');
}

/** The reference model bound to the example plan. */
export function referenceBound(): BoundModel {
  return example(referenceModel());
}

/** A fixed "now" for token tests (seconds). */
export const now = 1_800_000_000;
