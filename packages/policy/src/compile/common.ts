/** Small helpers shared by the compilers. */
import { labelKeys } from '@trellis/contracts';
import type { Model } from '../schema.ts';

/** Kubernetes object metadata, as the compilers emit it. */
export interface ObjectMeta {
  name: string;
  namespace: string;
  labels: Record<string, string>;
}

/** Metadata for a generated object; the region, when given, becomes a label. */
export function meta(name: string, namespace: string, region: string | undefined): ObjectMeta {
  const labels: Record<string, string> = { [labelKeys.managedBy]: 'trellis' };
  if (region !== undefined) labels[labelKeys.region] = region;
  return { name, namespace, labels };
}

/** Throws when a region is named that the model does not declare (a programming error, not a model error). */
export function checkRegion(model: Model, region: string | undefined): void {
  if (region !== undefined && !Object.hasOwn(model.regions, region))
    throw new Error(
      `region '${region}' is not declared in the model (regions: ${Object.keys(model.regions).join(', ')})`,
    );
}

/** The model with its default namespace replaced, so SPIFFE IDs follow the namespace of the target. */
export function withNamespace<M extends Model>(model: M, namespace: string | undefined): M {
  return namespace === undefined ? model : { ...model, namespace };
}

/** `/orders/{id}` → the segments: literal strings, or null for a parameter. */
export function templateSegments(path: string): (string | null)[] {
  return path
    .split('/')
    .slice(1)
    .map((s) => (/^\{[A-Za-z_][A-Za-z0-9_]*\}$/.test(s) ? null : s));
}
