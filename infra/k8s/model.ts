import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatErrors, parseModel } from '@trellis/policy';
import type { ValidModel } from '@trellis/policy';

/** The repository's reference model, used when `trellis:modelPath` is not set. */
export const defaultModelPath = resolve(import.meta.dirname, '../../trellis.yaml');

/** Read and validate the policy model; a bad model stops the program with every error and its path. */
export function loadModel(path: string = defaultModelPath): ValidModel {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new Error(
      `trellis:modelPath: cannot read the model at ${path}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const result = parseModel(text);
  if (!result.ok) throw new Error(`invalid model ${path}:\n${formatErrors(result.errors)}`);
  return result.model;
}
