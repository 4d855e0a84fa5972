/**
 * Rules on workloads and data stores: resource limits, encrypted and authenticated data listeners,
 * and no secret material in plain config.
 */
import type { ResourceValidationPolicy } from '@pulumi/policy';
import { arr, containersOf, isKind, leaves, obj, type Props } from './resources.ts';

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
