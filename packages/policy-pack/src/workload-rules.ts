/**
 * Rules on workloads and data stores: resource limits, encrypted and authenticated data listeners,
 * and no secret material in plain config.
 */
import type { ResourceValidationPolicy } from '@pulumi/policy';
import { arr, containersOf, isKind, leaves, obj, podSpecOf, type Props } from './resources.ts';

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

/** The data stores a service connects to itself, by the variable that names their address. */
const dataStores = [
  { store: 'Cassandra', address: 'CASSANDRA_CONTACT_POINTS', prefix: 'CASSANDRA_TLS_' },
  { store: 'Kafka', address: 'KAFKA_BROKERS', prefix: 'KAFKA_TLS_' },
] as const;

/** Whether a pod volume holds a Secret (a secret volume, or a projection with a secret source). */
function holdsSecret(volume: Props): boolean {
  if (volume.secret !== undefined) return true;
  return arr(obj(volume.projected).sources).some((s) => obj(s).secret !== undefined);
}

/**
 * A container that talks to Cassandra or Kafka presents a client certificate: both require one
 * (Cassandra's client_encryption_options.require_client_auth and identity → role; Kafka's TLS client
 * authentication), and the mesh's mTLS ends at the data store's sidecar, so it is no substitute. The
 * container names its CA, certificate and key files, and each lies under a read-only mount of a
 * Secret, where the certificate's issuer (cert-manager) keeps it renewed.
 */
export const dataClientsPresentCertificates: ResourceValidationPolicy = {
  name: 'data-clients-present-certificates',
  description:
    'A container with CASSANDRA_CONTACT_POINTS or KAFKA_BROKERS sets <STORE>_TLS_CA_FILE, _CERT_FILE and _KEY_FILE to files under a read-only mount of a Secret.',
  enforcementLevel: 'mandatory',
  validateResource: (args, report) => {
    const volumes = new Map(
      arr(podSpecOf(args)?.pod.volumes).map((v) => [String(obj(v).name), obj(v)]),
    );
    for (const { path, c } of containersOf(args)) {
      const env = new Map(arr(c.env).map((e) => [String(obj(e).name), obj(e).value]));
      const mounts = arr(c.volumeMounts).map(obj);
      for (const { store, address, prefix } of dataStores) {
        if (!env.has(address)) continue;
        for (const file of ['CA_FILE', 'CERT_FILE', 'KEY_FILE']) {
          const name = `${prefix}${file}`;
          const value = env.get(name);
          if (typeof value !== 'string' || value === '') {
            report(`${args.name}: ${path} connects to ${store} but sets no ${name}`);
            continue;
          }
          const mount = mounts.find((m) => value.startsWith(`${String(m.mountPath)}/`));
          const volume = mount ? volumes.get(String(mount.name)) : undefined;
          if (!mount || !volume || !holdsSecret(volume) || mount.readOnly !== true) {
            report(
              `${args.name}: ${path} ${name} (${value}) is not under a read-only mount of a Secret`,
            );
          }
        }
      }
    }
  },
};

const secretKey = /(pass(word|wd)?|secret|token|api[-_]?key|private[-_]?key|credential)s?$/i;
const pemPrivateKey = /-----BEGIN [A-Z ]*PRIVATE KEY-----/;

/**
 * Types whose job is to hold secret material, kept by Pulumi as secrets in state: Secrets, and the
 * project's own PKI and password dynamic resources (packages/components pki/meshCa.ts, k8s/password.ts)
 * that replace @pulumi/tls and @pulumi/random.
 */
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
