import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { cassandraAuditLogging } from '@trellis/local/harness';
import { meshNamespace, operatorRelease } from './common.ts';
import type { OperatorSource } from './common.ts';
import { GeneratedPassword } from './password.ts';
import { cassandraVersion, charts } from './versions.ts';

const defaults = {
  namespace: 'trellis-cassandra',
  clusterName: 'trellis',
  size: 3,
  storageGi: 100,
  resources: { requests: { cpu: '2', memory: '8Gi' }, limits: { cpu: '4', memory: '8Gi' } },
  /** Cassandra's storage_port: gossip and streaming, TLS since internode_encryption is "all". */
  internodePort: 7000,
  /** The operators' webhooks are called by the API server, which has no mesh identity. */
  webhookPort: 9443,
} as const;

/**
 * The CQL contact point of a K8ssandra datacenter: its Service
 * `<cluster>-<datacenter>-service.<namespace>.svc.cluster.local:9042`.
 */
export function cassandraContactPoint(
  datacenter: string,
  namespace: string = defaults.namespace,
  clusterName: string = defaults.clusterName,
): { address: string; port: number } {
  return {
    address: `${clusterName}-${datacenter}-service.${namespace}.svc.cluster.local`,
    port: 9042,
  };
}

/** Arguments of {@link Cassandra}. */
export interface CassandraArgs {
  /** Datacenter name: one per region (e.g. `us`, `eu`). */
  datacenter: string;
  /** The data-plane intermediate CA (cert + key, PEM) that issues node keystores. */
  dataCa: { certPem: pulumi.Input<string>; keyPem: pulumi.Input<string> };
  /** Nodes in the datacenter. @default 3 */
  size?: number;
  /** Storage class for data volumes (e.g. gp3 on EKS). */
  storageClassName?: string;
  /** @default 100 */
  storageGi?: number;
  /** @default "5.0.6" */
  serverVersion?: string;
  /** @default "trellis-cassandra" */
  namespace?: string;
  /** @default "trellis" */
  clusterName?: string;
  /** cert-manager and Istio must be up first. */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
  /** Whether the operator's chart is installed here or preinstalled (common.ts). @default "install" */
  operators?: OperatorSource;
}

/**
 * Cassandra 5 through K8ssandra (k8ssandra-operator + cass-operator) inside STRICT mTLS, with client
 * and internode encryption on (stores issued by cert-manager from the data intermediate) and the audit
 * log on (`cassandraYaml` is passed to cassandra.yaml as given: k8ssandra-operator issue #710). How gossip
 * and operator traffic survive STRICT mTLS: docs/adr/0008-cassandra-under-strict-mtls.md.
 */
export class Cassandra extends pulumi.ComponentResource {
  /** Namespace of the cluster. */
  public readonly namespace: pulumi.Output<string>;
  /** CQL contact point (the datacenter Service). */
  public readonly contactPoint: pulumi.Output<string>;

  constructor(name: string, args: CassandraArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:Cassandra', name, {}, opts);
    if (!/^[a-z][a-z0-9-]*$/.test(args.datacenter)) {
      throw new pulumi.ResourceError(
        `Cassandra ${name}: datacenter must be a lowercase DNS label, got "${args.datacenter}"`,
        this,
      );
    }
    const size = args.size ?? defaults.size;
    if (!Number.isInteger(size) || size < 3) {
      // With fewer than 3 nodes a QUORUM write cannot survive one node down during a rolling restart.
      throw new pulumi.ResourceError(
        `Cassandra ${name}: size must be at least 3, got ${size}`,
        this,
      );
    }
    const serverVersion = args.serverVersion ?? cassandraVersion;
    if (!/^5\.\d+\.\d+$/.test(serverVersion)) {
      throw new pulumi.ResourceError(
        `Cassandra ${name}: serverVersion must be a Cassandra 5 release x.y.z, got "${serverVersion}"`,
        this,
      );
    }
    const namespace = args.namespace ?? defaults.namespace;
    const clusterName = args.clusterName ?? defaults.clusterName;
    const child = { parent: this };
    const dependsOn = args.dependsOn ?? [];

    const ns = meshNamespace(`${name}-ns`, namespace, 'sidecar', { parent: this, dependsOn });
    // The operators run in the mesh too, so their calls to the management API (8080) are mTLS. Only
    // the webhook port is kept out of the sidecar, because the API server calls it without mTLS.
    const webhookBypass = {
      'traffic.sidecar.istio.io/excludeInboundPorts': String(defaults.webhookPort),
    };
    const operator = operatorRelease(
      args.operators,
      `${name}-operator`,
      charts.k8ssandra,
      {
        namespace: ns.metadata.name,
        releaseName: 'k8ssandra-operator',
        values: {
          image: { tag: `v${charts.k8ssandra.version}` },
          podAnnotations: webhookBypass,
          // The CRD upgrader is a Helm hook Job that would never finish with a sidecar next to it.
          disableCrdUpgraderJob: true,
          resources: {
            requests: { cpu: '100m', memory: '256Mi' },
            limits: { cpu: '500m', memory: '512Mi' },
          },
          'cass-operator': { podAnnotations: webhookBypass },
        },
      },
      { parent: this, dependsOn: [ns] },
    );

    const caSecret = new k8s.core.v1.Secret(
      `${name}-data-ca`,
      {
        metadata: { name: 'trellis-data-ca', namespace: ns.metadata.name },
        type: 'kubernetes.io/tls',
        stringData: pulumi.secret(
          pulumi.all([args.dataCa.certPem, args.dataCa.keyPem]).apply(([crt, key]) => ({
            'tls.crt': crt,
            'tls.key': key,
          })),
        ),
      },
      child,
    );
    const issuer = new k8s.apiextensions.CustomResource(
      `${name}-issuer`,
      {
        apiVersion: 'cert-manager.io/v1',
        kind: 'Issuer',
        metadata: { name: 'trellis-data-ca', namespace: ns.metadata.name },
        spec: { ca: { secretName: caSecret.metadata.name } },
      },
      { parent: this, dependsOn: [caSecret] },
    );
    const password = new GeneratedPassword(`${name}-store-password`, { length: 32 }, child);
    const storesPassword = new k8s.core.v1.Secret(
      `${name}-store-password`,
      {
        metadata: { name: 'cassandra-store-password', namespace: ns.metadata.name },
        type: 'Opaque',
        stringData: { password: pulumi.secret(password.value) },
      },
      child,
    );
    const dcService = `${clusterName}-${args.datacenter}-service`;
    const storesSecret = 'cassandra-stores';
    const cert = new k8s.apiextensions.CustomResource(
      `${name}-node-cert`,
      {
        apiVersion: 'cert-manager.io/v1',
        kind: 'Certificate',
        metadata: { name: 'cassandra-node', namespace: ns.metadata.name },
        spec: {
          secretName: storesSecret,
          issuerRef: { name: issuer.metadata.name, kind: 'Issuer' },
          commonName: `${clusterName}-${args.datacenter}`,
          dnsNames: [
            `${dcService}.${namespace}.svc.cluster.local`,
            `*.${clusterName}-${args.datacenter}-all-pods-service.${namespace}.svc.cluster.local`,
          ],
          duration: '2160h',
          renewBefore: '360h',
          privateKey: { algorithm: 'ECDSA', size: 256, rotationPolicy: 'Always' },
          usages: ['server auth', 'client auth'],
          keystores: {
            jks: {
              create: true,
              passwordSecretRef: { name: storesPassword.metadata.name, key: 'password' },
            },
          },
        },
      },
      { parent: this, dependsOn: [issuer] },
    );
    const stores = {
      keystoreSecretRef: { name: storesSecret, key: 'keystore.jks' },
      keystorePasswordSecretRef: { name: 'cassandra-store-password', key: 'password' },
      truststoreSecretRef: { name: storesSecret, key: 'truststore.jks' },
      truststorePasswordSecretRef: { name: 'cassandra-store-password', key: 'password' },
    };
    // Gossip goes pod IP to pod IP on 7000. A port that no Service declares is PassthroughCluster for
    // the sidecar (plaintext), which STRICT peers reject; a headless Service declaring it makes Istio
    // build per-endpoint listeners with mTLS. publishNotReadyAddresses: nodes gossip before Ready.
    new k8s.core.v1.Service(
      `${name}-internode`,
      {
        metadata: {
          name: `${clusterName}-${args.datacenter}-internode`,
          namespace: ns.metadata.name,
        },
        spec: {
          clusterIP: 'None',
          publishNotReadyAddresses: true,
          selector: {
            'cassandra.datastax.com/cluster': clusterName,
            'cassandra.datastax.com/datacenter': args.datacenter,
          },
          ports: [
            {
              name: 'tcp-internode',
              port: defaults.internodePort,
              targetPort: defaults.internodePort,
              appProtocol: 'tcp',
            },
          ],
        },
      },
      child,
    );
    new k8s.apiextensions.CustomResource(
      `${name}-cluster`,
      {
        apiVersion: 'k8ssandra.io/v1alpha1',
        kind: 'K8ssandraCluster',
        metadata: { name: clusterName, namespace: ns.metadata.name },
        spec: {
          auth: true,
          cassandra: {
            serverVersion,
            resources: defaults.resources,
            storageConfig: {
              cassandraDataVolumeClaimSpec: {
                ...(args.storageClassName ? { storageClassName: args.storageClassName } : {}),
                accessModes: ['ReadWriteOnce'],
                resources: { requests: { storage: `${args.storageGi ?? defaults.storageGi}Gi` } },
              },
            },
            config: {
              cassandraYaml: {
                server_encryption_options: {
                  internode_encryption: 'all',
                  require_client_auth: true,
                },
                client_encryption_options: {
                  enabled: true,
                  optional: false,
                  require_client_auth: true,
                },
                // The audit trail's Cassandra part, as in the local stack (one definition):
                // FileAuditLogger, DML/DDL/DCL/AUTH, the system keyspaces excluded (an include list
                // would drop every login). Its INFO lines go through the image's logback config:
                // with Cassandra's stock one, system.log, which cass-operator's
                // server-system-logger container prints to stdout.
                audit_logging_options: cassandraAuditLogging(),
              },
            },
            serverEncryptionStores: stores,
            clientEncryptionStores: stores,
            datacenters: [{ metadata: { name: args.datacenter }, size }],
          },
        },
      },
      { parent: this, dependsOn: [...operator, cert, storesPassword] },
    );
    this.namespace = ns.metadata.name;
    const contact = cassandraContactPoint(args.datacenter, namespace, clusterName);
    this.contactPoint = pulumi.output(`${contact.address}:${contact.port}`);
    this.registerOutputs({ namespace: this.namespace, contactPoint: this.contactPoint });
  }
}
