/** Rules on images: pinned by digest in workloads and Helm values (mandatory), chart images (advisory). */
import type { ResourceValidationPolicy } from '@pulumi/policy';
import { containersOf, leaves, obj } from './resources.ts';

const digest = /@sha256:[a-f0-9]{64}$/;
const bareDigest = /^sha256:[a-f0-9]{64}$/;

/**
 * Helm charts whose values accept an image digest, by chart name, with every value path of an image the
 * Trellis platform runs. cert-manager: chart README, `image.digest` "Setting a digest will override any
 * tag" (same for webhook, cainjector, acmesolver, startupapicheck). Strimzi: templates/_helpers.tpl
 * `strimzi.image`, "Priority is given to digests over tags" (`image` is the operator, `<key>.image` the
 * images the operator starts; one digest serves every Kafka version of the image map).
 */
export const chartDigestValues: Readonly<Record<string, readonly string[]>> = {
  'cert-manager': [
    'image.digest',
    'webhook.image.digest',
    'cainjector.image.digest',
    'acmesolver.image.digest',
    'startupapicheck.image.digest',
  ],
  'strimzi-kafka-operator': [
    'image.digest',
    'kafka.image.digest',
    'topicOperator.image.digest',
    'userOperator.image.digest',
    'kafkaInit.image.digest',
  ],
};

/** The chart's name without repository or OCI prefix (`oci://ghcr.io/nginx/charts/x` → `x`). */
function chartName(chart: unknown): string {
  return String(chart ?? '')
    .split('/')
    .pop() as string;
}

/** A dotted path in a values object. */
function valueAt(values: unknown, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => obj(v)[k], values);
}

/**
 * Images must be pinned by digest: a tag can be moved to other bytes. Covers containers of Kubernetes
 * workloads, and Helm values that choose an image: a digest given to a chart must be a sha256 digest,
 * and a chart that accepts digests must not be given a bare tag override.
 */
export const imagesPinnedByDigest: ResourceValidationPolicy = {
  name: 'images-pinned-by-digest',
  description:
    'Every container image is referenced by digest (image@sha256:...); Helm image values use digests.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    for (const { path, c } of containersOf(args)) {
      const image = String(c.image ?? '');
      if (!digest.test(image))
        report(`${args.name}: ${path}.image "${image}" is not pinned by digest`);
    }
    if (args.type !== 'kubernetes:helm.sh/v3:Release') return;
    const values = args.props.values;
    for (const leaf of leaves(values, 'values')) {
      if (leaf.key === 'digest' && leaf.value !== '' && !bareDigest.test(leaf.value))
        report(`Helm release ${args.name}: ${leaf.path} "${leaf.value}" is not a sha256 digest`);
      if (leaf.key === 'image' && /[:/]/.test(leaf.value) && !digest.test(leaf.value))
        report(`Helm release ${args.name}: ${leaf.path} "${leaf.value}" is not pinned by digest`);
    }
    for (const path of chartDigestValues[chartName(args.props.chart)] ?? []) {
      const tagPath = path.replace(/digest$/, 'tag');
      if (valueAt(values, tagPath) !== undefined && valueAt(values, path) === undefined)
        report(
          `Helm release ${args.name}: values.${tagPath} is set without values.${path}; this chart takes a digest`,
        );
    }
  },
};

/**
 * Advisory: images that charts render by tag. Pulumi sees a Helm release's values, not the manifests it
 * renders, so this reports, per release, every image that is not pinned: for charts that accept digests
 * the exact value paths to set, for the others that their images are pulled by tag (pin them at
 * admission, docs/environments.md "Chart images").
 */
export const chartImagesPinnedByDigest: ResourceValidationPolicy = {
  name: 'chart-images-pinned-by-digest',
  description:
    'Images rendered by Helm charts are pinned by digest where the chart accepts one (advisory).',
  enforcementLevel: 'advisory',
  validateResource: (args, report) => {
    if (args.type !== 'kubernetes:helm.sh/v3:Release') return;
    const chart = chartName(args.props.chart);
    const paths = chartDigestValues[chart];
    if (!paths) {
      report(
        `Helm release ${args.name} (${chart}): the chart takes no image digest; its images are pulled by tag`,
      );
      return;
    }
    const unset = paths.filter(
      (p) => !bareDigest.test(String(valueAt(args.props.values, p) ?? '')),
    );
    if (unset.length > 0)
      report(
        `Helm release ${args.name} (${chart}): set ${unset.map((p) => `values.${p}`).join(', ')} to sha256 digests`,
      );
  },
};
