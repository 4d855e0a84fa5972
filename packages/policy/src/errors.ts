/** One problem found in a model: where (a path such as `workloads.orders-api.calls[2]`) and why. */
export interface PolicyError {
  /** Path of the bad field: dotted keys, `[i]` for list items, `["k.v"]` for keys that are not plain names. */
  path: string;
  /** What is wrong, in words a platform engineer can act on. */
  reason: string;
}

/** The path used for problems that concern the whole document (YAML syntax, a non-object root). */
export const rootPath = '(root)';

const plainKey = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Formats path segments as `a.b[2]["orders.v1"]`. */
export function formatPath(segments: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of segments) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else {
      const key = String(seg);
      if (plainKey.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out === '' ? rootPath : out;
}

/** Renders errors one per line, `path: reason`. */
export function formatErrors(errors: readonly PolicyError[]): string {
  return errors.map((e) => `${e.path}: ${e.reason}`).join('\n');
}
