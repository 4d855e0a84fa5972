/**
 * Reading the policy model from a file. `@trellis/policy` does no I/O, so this is the one place that
 * reads a model file: the CLI, the Pulumi programs and the load tests all call {@link loadModelFile}.
 * No Pulumi import here, so the CLI can use it without loading the component code.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { formatErrors, parseModel } from '@trellis/policy';
import type { PolicyError, ValidModel } from '@trellis/policy';

/** The repository's reference model (`trellis.yaml` at the root). */
export const referenceModelPath = resolve(import.meta.dirname, '../../../trellis.yaml');

/** A model file that cannot be used: unreadable (`code` set, no `errors`), or invalid (`errors`). */
export class ModelFileError extends Error {
  /** The file, as given. */
  readonly path: string;
  /** Path-qualified validation errors; empty when the file could not be read. */
  readonly errors: readonly PolicyError[];
  /** The errno code (`ENOENT`, `EACCES`, ...) when the file could not be read. */
  readonly code: string | undefined;

  constructor(
    path: string,
    message: string,
    detail: { errors?: readonly PolicyError[]; code?: string; cause?: unknown },
  ) {
    super(message, { cause: detail.cause });
    this.name = 'ModelFileError';
    this.path = path;
    this.errors = detail.errors ?? [];
    this.code = detail.code;
  }
}

/**
 * Read and validate a model file. Throws a {@link ModelFileError}: `cannot read the model at <path>:
 * <reason>`, or `<path> is invalid:` followed by one `<field path>: <reason>` line per error. `key`,
 * the setting that named the file (e.g. `trellis:modelPath`), prefixes the message when given.
 */
export function loadModelFile(path: string, key?: string): ValidModel {
  const at = key !== undefined ? `${key}: ` : '';
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new ModelFileError(path, `${at}cannot read the model at ${path}: ${e.message}`, {
      code: e.code ?? 'error',
      cause: err,
    });
  }
  const result = parseModel(text);
  if (!result.ok) {
    throw new ModelFileError(path, `${at}${path} is invalid:\n${formatErrors(result.errors)}`, {
      errors: result.errors,
    });
  }
  return result.model;
}
