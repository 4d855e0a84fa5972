/**
 * The Trellis policy pack's rules. Each is a mandatory resource validation over the resources a
 * `pulumi preview`/`up` would create, so a change that breaks an invariant of ARCHITECTURE.md (STRICT
 * mTLS, pinned images, limits, no open edges, encrypted data paths, no secrets in plain config) is
 * stopped before it reaches a cluster.
 */
import type { ResourceValidationArgs, ResourceValidationPolicy } from '@pulumi/policy';

type Props = Record<string, unknown>;

const obj = (v: unknown): Props =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Props) : {};
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);

/** Kubernetes resource type token: `kubernetes:<group>/<version>:<Kind>` (core: `core/v1`). */
function k8sKind(type: string): { group: string; kind: string } | undefined {
  const m = /^kubernetes:([^:]+)\/[^/:]+:([A-Za-z0-9]+)$/.exec(type);
  return m ? { group: m[1] as string, kind: m[2] as string } : undefined;
}

function isKind(args: ResourceValidationArgs, group: string, kind: string): boolean {
  const k = k8sKind(args.type);
  return k !== undefined && k.group === group && k.kind === kind;
}

const workloadKinds = new Set([
  'Deployment',
  'StatefulSet',
  'DaemonSet',
  'ReplicaSet',
  'Job',
  'CronJob',
  'Pod',
]);

/** Containers (and init containers) of a workload resource, with their JSON path. */
function containersOf(args: ResourceValidationArgs): { path: string; c: Props }[] {
  const k = k8sKind(args.type);
  if (!k || !workloadKinds.has(k.kind)) return [];
  const spec = obj(args.props.spec);
  let podSpec: Props;
  let base: string;
  if (k.kind === 'Pod') {
    podSpec = spec;
    base = 'spec';
  } else if (k.kind === 'CronJob') {
    podSpec = obj(obj(obj(obj(spec.jobTemplate).spec).template).spec);
    base = 'spec.jobTemplate.spec.template.spec';
  } else {
    podSpec = obj(obj(spec.template).spec);
    base = 'spec.template.spec';
  }
  return [
    ...arr(podSpec.initContainers).map((c, i) => ({
      path: `${base}.initContainers[${i}]`,
      c: obj(c),
    })),
    ...arr(podSpec.containers).map((c, i) => ({ path: `${base}.containers[${i}]`, c: obj(c) })),
  ];
}

const secretKey = /(pass(word|wd)?|secret|token|api[-_]?key|private[-_]?key|credential)s?$/i;
const pemPrivateKey = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/** Every string leaf of a value, with its path. */
function* leaves(
  v: unknown,
  path: string,
): Generator<{ path: string; key: string; value: string }> {
  if (typeof v === 'string') {
    yield { path, key: path.split('.').pop() ?? '', value: v };
  } else if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) yield* leaves(x, `${path}[${i}]`);
  } else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) yield* leaves(x, path ? `${path}.${k}` : k);
  }
}

/** PeerAuthentication must be STRICT, including every port-level override. */
export const peerAuthenticationStrict: ResourceValidationPolicy = {
  name: 'peer-authentication-strict',
  description: 'Istio PeerAuthentication must set mtls.mode STRICT (and STRICT on every port).',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (!isKind(args, 'security.istio.io', 'PeerAuthentication')) return;
    const spec = obj(args.props.spec);
    const mode = obj(spec.mtls).mode;
    if (mode !== 'STRICT') {
      report(
        `PeerAuthentication ${args.name}: spec.mtls.mode is ${String(mode ?? 'unset')}, must be STRICT`,
      );
    }
    for (const [port, setting] of Object.entries(obj(spec.portLevelMtls))) {
      const m = obj(setting).mode;
      if (m !== 'STRICT') {
        report(
          `PeerAuthentication ${args.name}: spec.portLevelMtls.${port}.mode is ${String(m)}, must be STRICT`,
        );
      }
    }
  },
};

/** A DestinationRule may not turn mesh mTLS off (DISABLE) or into one-way TLS (SIMPLE). */
export const destinationRuleMutualTls: ResourceValidationPolicy = {
  name: 'destination-rule-mutual-tls',
  description: 'Istio DestinationRule TLS mode, where set, must be ISTIO_MUTUAL or MUTUAL.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (!isKind(args, 'networking.istio.io', 'DestinationRule')) return;
    const spec = obj(args.props.spec);
    const policies: { path: string; tp: Props }[] = [
      { path: 'spec.trafficPolicy', tp: obj(spec.trafficPolicy) },
    ];
    arr(spec.subsets).forEach((s, i) =>
      policies.push({ path: `spec.subsets[${i}].trafficPolicy`, tp: obj(obj(s).trafficPolicy) }),
    );
    for (const { path, tp } of policies) {
      const tlsSettings: { path: string; tls: Props }[] = [
        { path: `${path}.tls`, tls: obj(tp.tls) },
      ];
      arr(tp.portLevelSettings).forEach((p, i) =>
        tlsSettings.push({ path: `${path}.portLevelSettings[${i}].tls`, tls: obj(obj(p).tls) }),
      );
      for (const { path: p, tls } of tlsSettings) {
        if (tls.mode !== undefined && tls.mode !== 'ISTIO_MUTUAL' && tls.mode !== 'MUTUAL') {
          report(
            `DestinationRule ${args.name}: ${p}.mode is ${String(tls.mode)}, must be ISTIO_MUTUAL or MUTUAL`,
          );
        }
      }
    }
  },
};

/** Label that marks the one Service allowed to be a LoadBalancer: the gateway's. */
export const gatewayRoleLabel = 'trellis.dev/role';

/** Only the gateway may be exposed through a cloud load balancer. */
export const noLoadBalancerOutsideGateway: ResourceValidationPolicy = {
  name: 'no-loadbalancer-outside-gateway',
  description: `A Service of type LoadBalancer is only allowed for the gateway (label ${gatewayRoleLabel}=gateway).`,
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (isKind(args, 'core', 'Service')) {
      const labels = obj(obj(args.props.metadata).labels);
      if (obj(args.props.spec).type === 'LoadBalancer' && labels[gatewayRoleLabel] !== 'gateway') {
        report(
          `Service ${args.name}: type LoadBalancer outside the gateway; use ClusterIP and route through the gateway`,
        );
      }
      return;
    }
    if (args.type === 'kubernetes:helm.sh/v3:Release') {
      const chart = String(args.props.chart ?? '');
      if (chart.endsWith('nginx-gateway-fabric')) return;
      for (const leaf of leaves(args.props.values, 'values')) {
        if (leaf.key === 'type' && leaf.value === 'LoadBalancer') {
          report(
            `Helm release ${args.name} (${chart}): ${leaf.path} is LoadBalancer outside the gateway`,
          );
        }
      }
    }
  },
};

/** Every container must have CPU and memory limits (so one tenant cannot starve the node). */
export const containersHaveLimits: ResourceValidationPolicy = {
  name: 'containers-have-limits',
  description:
    'Every container, and every Kafka node pool and Cassandra datacenter, sets CPU and memory limits.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    for (const { path, c } of containersOf(args)) {
      const limits = obj(obj(c.resources).limits);
      for (const r of ['cpu', 'memory']) {
        if (limits[r] === undefined)
          report(`${args.name}: ${path}.resources.limits.${r} is missing`);
      }
    }
    const crLimits: { match: boolean; path: string; limits: Props }[] = [
      {
        match: isKind(args, 'kafka.strimzi.io', 'KafkaNodePool'),
        path: 'spec.resources.limits',
        limits: obj(obj(obj(args.props.spec).resources).limits),
      },
      {
        match: isKind(args, 'k8ssandra.io', 'K8ssandraCluster'),
        path: 'spec.cassandra.resources.limits',
        limits: obj(obj(obj(obj(args.props.spec).cassandra).resources).limits),
      },
    ];
    for (const { match, path, limits } of crLimits) {
      if (!match) continue;
      for (const r of ['cpu', 'memory']) {
        if (limits[r] === undefined) report(`${args.name}: ${path}.${r} is missing`);
      }
    }
  },
};

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

/** An ALLOW rule without `from` allows every caller: the mesh identity check is gone. */
export const authorizationAllowNeedsFrom: ResourceValidationPolicy = {
  name: 'authorization-allow-needs-from',
  description:
    'An Istio AuthorizationPolicy with action ALLOW must name the callers (from) in every rule.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (!isKind(args, 'security.istio.io', 'AuthorizationPolicy')) return;
    const spec = obj(args.props.spec);
    const action = spec.action ?? 'ALLOW';
    if (action !== 'ALLOW') return;
    arr(spec.rules).forEach((rule, i) => {
      const from = arr(obj(rule).from);
      if (from.length === 0 || from.some((f) => Object.keys(obj(obj(f).source)).length === 0)) {
        report(`AuthorizationPolicy ${args.name}: spec.rules[${i}] allows without a from.source`);
      }
    });
  },
};

/** Kafka listeners and Cassandra client/internode traffic must be encrypted and authenticated. */
export const noPlaintextDataListeners: ResourceValidationPolicy = {
  name: 'no-plaintext-data-listeners',
  description:
    'Kafka listeners use TLS with TLS client authentication; Cassandra has client and internode encryption on.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (isKind(args, 'kafka.strimzi.io', 'Kafka')) {
      const listeners = arr(obj(obj(args.props.spec).kafka).listeners);
      if (listeners.length === 0) report(`Kafka ${args.name}: spec.kafka.listeners is empty`);
      listeners.forEach((l, i) => {
        const listener = obj(l);
        if (listener.tls !== true)
          report(`Kafka ${args.name}: spec.kafka.listeners[${i}] is plaintext (tls is not true)`);
        if (obj(listener.authentication).type !== 'tls') {
          report(`Kafka ${args.name}: spec.kafka.listeners[${i}].authentication.type must be tls`);
        }
      });
      return;
    }
    let yaml: Props | undefined;
    let where = '';
    if (isKind(args, 'k8ssandra.io', 'K8ssandraCluster')) {
      const cassandra = obj(obj(args.props.spec).cassandra);
      yaml = obj(obj(cassandra.config).cassandraYaml);
      where = 'spec.cassandra.config.cassandraYaml';
      for (const stores of ['serverEncryptionStores', 'clientEncryptionStores']) {
        if (cassandra[stores] === undefined)
          report(`K8ssandraCluster ${args.name}: spec.cassandra.${stores} is missing`);
      }
    } else if (isKind(args, 'cassandra.datastax.com', 'CassandraDatacenter')) {
      yaml = obj(obj(obj(args.props.spec).config)['cassandra-yaml']);
      where = 'spec.config.cassandra-yaml';
    }
    if (!yaml) return;
    const server = obj(yaml.server_encryption_options);
    const client = obj(yaml.client_encryption_options);
    if (server.internode_encryption !== 'all') {
      report(`${args.name}: ${where}.server_encryption_options.internode_encryption must be all`);
    }
    if (client.enabled !== true || client.optional === true) {
      report(`${args.name}: ${where}.client_encryption_options must be enabled and not optional`);
    }
  },
};

/** Types whose job is to hold secret material. */
// Resources whose job is to hold key material, kept by Pulumi as secrets in state: Secrets, and the
// project's own PKI and password dynamic resources (packages/components pki/meshCa.ts, k8s/password.ts)
// that replace @pulumi/tls and @pulumi/random.
const secretHolders = [
  /^kubernetes:core\/v1:Secret$/,
  /^tls:/,
  /^random:/,
  /^pulumi-nodejs:dynamic\/trellis-pki:(RootCa|IntermediateCa)$/,
  /^pulumi-nodejs:dynamic\/trellis-k8s:GeneratedPassword$/,
];

/** Secret values belong in Secrets (from Pulumi secrets), never in plain config. */
export const noSecretsInPlainConfig: ResourceValidationPolicy = {
  name: 'no-secrets-in-plain-config',
  description:
    'No private key or password-like literal in ConfigMaps, container env values, Helm values or other plain properties.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    if (secretHolders.some((re) => re.test(args.type))) return;
    for (const leaf of leaves(args.props, '')) {
      if (pemPrivateKey.test(leaf.value)) {
        report(
          `${args.name}: ${leaf.path} holds a private key; put it in a Secret from a Pulumi secret`,
        );
      }
    }
    if (isKind(args, 'core', 'ConfigMap')) {
      for (const [k, v] of Object.entries(obj(args.props.data))) {
        if (secretKey.test(k) && typeof v === 'string' && v !== '') {
          report(`ConfigMap ${args.name}: data.${k} looks like a secret; use a Secret`);
        }
      }
    }
    for (const { path, c } of containersOf(args)) {
      arr(c.env).forEach((e, i) => {
        const env = obj(e);
        if (
          secretKey.test(String(env.name ?? '')) &&
          typeof env.value === 'string' &&
          env.value !== ''
        ) {
          report(
            `${args.name}: ${path}.env[${i}] (${String(env.name)}) is a literal; use valueFrom.secretKeyRef`,
          );
        }
      });
    }
    if (args.type === 'kubernetes:helm.sh/v3:Release') {
      for (const leaf of leaves(args.props.values, 'values')) {
        if (secretKey.test(leaf.key) && leaf.value !== '') {
          report(
            `Helm release ${args.name}: ${leaf.path} is a literal secret; reference an existing Secret`,
          );
        }
      }
    }
  },
};

/** Every mandatory rule of the pack: a violation stops `pulumi preview`/`up`. */
export const policies: ResourceValidationPolicy[] = [
  peerAuthenticationStrict,
  destinationRuleMutualTls,
  noLoadBalancerOutsideGateway,
  containersHaveLimits,
  imagesPinnedByDigest,
  authorizationAllowNeedsFrom,
  noPlaintextDataListeners,
  noSecretsInPlainConfig,
];

/** Advisory rules: reported, never blocking. */
export const advisoryPolicies: ResourceValidationPolicy[] = [chartImagesPinnedByDigest];
