import { describe, expect, it } from 'vitest';
import {
  advisoryPolicies,
  authorizationAllowNeedsFrom,
  chartImagesPinnedByDigest,
  containersHaveLimits,
  dataClientsPresentCertificates,
  destinationRuleMutualTls,
  imagesPinnedByDigest,
  noLoadBalancerOutsideGateway,
  noPlaintextDataListeners,
  noSecretsInPlainConfig,
  peerAuthenticationStrict,
  policies,
} from '../src/policies.ts';
import { validationArgs as resource, validate as violations } from './support/validate.ts';

const digest = `ghcr.io/trellis/orders-api@sha256:${'a'.repeat(64)}`;
const deployment = (container: Record<string, unknown>) =>
  resource('kubernetes:apps/v1:Deployment', {
    metadata: { name: 'orders-api' },
    spec: { template: { spec: { containers: [{ name: 'app', ...container }] } } },
  });
const limits = { resources: { limits: { cpu: '1', memory: '512Mi' } } };

describe('policy pack', () => {
  it('has every rule mandatory and uniquely named', () => {
    expect(policies).toHaveLength(9);
    expect(new Set(policies.map((p) => p.name)).size).toBe(9);
    expect(policies.every((p) => p.enforcementLevel === 'mandatory')).toBe(true);
  });

  it('peer-authentication-strict: passes STRICT, rejects PERMISSIVE and a PERMISSIVE port', async () => {
    const type = 'kubernetes:security.istio.io/v1:PeerAuthentication';
    expect(
      await violations(
        peerAuthenticationStrict,
        resource(type, { spec: { mtls: { mode: 'STRICT' } } }),
      ),
    ).toEqual([]);
    expect(
      await violations(
        peerAuthenticationStrict,
        resource(type, { spec: { mtls: { mode: 'PERMISSIVE' } } }),
      ),
    ).toEqual([expect.stringContaining('spec.mtls.mode is PERMISSIVE')]);
    const port = resource(type, {
      spec: { mtls: { mode: 'STRICT' }, portLevelMtls: { '7000': { mode: 'DISABLE' } } },
    });
    expect(await violations(peerAuthenticationStrict, port)).toEqual([
      expect.stringContaining('portLevelMtls.7000.mode is DISABLE'),
    ]);
  });

  it('destination-rule-mutual-tls: passes ISTIO_MUTUAL, rejects DISABLE and SIMPLE', async () => {
    const type = 'kubernetes:networking.istio.io/v1:DestinationRule';
    const ok = resource(type, {
      spec: { host: 'a', trafficPolicy: { tls: { mode: 'ISTIO_MUTUAL' } } },
    });
    expect(await violations(destinationRuleMutualTls, ok)).toEqual([]);
    const off = resource(type, {
      spec: { host: 'a', trafficPolicy: { tls: { mode: 'DISABLE' } } },
    });
    expect(await violations(destinationRuleMutualTls, off)).toEqual([
      expect.stringContaining('spec.trafficPolicy.tls.mode is DISABLE'),
    ]);
    const subset = resource(type, {
      spec: {
        host: 'a',
        subsets: [
          { name: 'v1', trafficPolicy: { portLevelSettings: [{ tls: { mode: 'SIMPLE' } }] } },
        ],
      },
    });
    expect(await violations(destinationRuleMutualTls, subset)).toEqual([
      expect.stringContaining(
        'spec.subsets[0].trafficPolicy.portLevelSettings[0].tls.mode is SIMPLE',
      ),
    ]);
  });

  it('no-loadbalancer-outside-gateway: passes the gateway and ClusterIP, rejects others', async () => {
    const type = 'kubernetes:core/v1:Service';
    const gateway = resource(type, {
      metadata: { labels: { 'trellis.dev/role': 'gateway' } },
      spec: { type: 'LoadBalancer' },
    });
    expect(await violations(noLoadBalancerOutsideGateway, gateway)).toEqual([]);
    expect(
      await violations(
        noLoadBalancerOutsideGateway,
        resource(type, { spec: { type: 'ClusterIP' } }),
      ),
    ).toEqual([]);
    expect(
      await violations(
        noLoadBalancerOutsideGateway,
        resource(type, { spec: { type: 'LoadBalancer' } }),
      ),
    ).toEqual([expect.stringContaining('type LoadBalancer outside the gateway')]);
    const chart = resource('kubernetes:helm.sh/v3:Release', {
      chart: 'some-db',
      values: { primary: { service: { type: 'LoadBalancer' } } },
    });
    expect(await violations(noLoadBalancerOutsideGateway, chart)).toEqual([
      expect.stringContaining('values.primary.service.type is LoadBalancer'),
    ]);
    const ngf = resource('kubernetes:helm.sh/v3:Release', {
      chart: 'oci://ghcr.io/nginx/charts/nginx-gateway-fabric',
      values: { nginx: { service: { type: 'LoadBalancer' } } },
    });
    expect(await violations(noLoadBalancerOutsideGateway, ngf)).toEqual([]);
  });

  it('containers-have-limits: passes with limits, rejects a container or a node pool without', async () => {
    expect(
      await violations(containersHaveLimits, deployment({ image: digest, ...limits })),
    ).toEqual([]);
    expect(
      await violations(
        containersHaveLimits,
        deployment({ image: digest, resources: { limits: { cpu: '1' } } }),
      ),
    ).toEqual([expect.stringContaining('containers[0].resources.limits.memory is missing')]);
    const pool = resource('kubernetes:kafka.strimzi.io/v1:KafkaNodePool', {
      spec: { replicas: 3 },
    });
    expect(await violations(containersHaveLimits, pool)).toHaveLength(2);
    const cassandra = resource('kubernetes:k8ssandra.io/v1alpha1:K8ssandraCluster', {
      spec: { cassandra: { resources: { limits: { cpu: '4' } } } },
    });
    expect(await violations(containersHaveLimits, cassandra)).toEqual([
      expect.stringContaining('spec.cassandra.resources.limits.memory is missing'),
    ]);
  });

  it('images-pinned-by-digest: passes a digest, rejects a tag', async () => {
    expect(
      await violations(imagesPinnedByDigest, deployment({ image: digest, ...limits })),
    ).toEqual([]);
    expect(
      await violations(imagesPinnedByDigest, deployment({ image: 'nginx:1.27', ...limits })),
    ).toEqual([expect.stringContaining('"nginx:1.27" is not pinned by digest')]);
  });

  it('images-pinned-by-digest: checks the image values of Helm releases', async () => {
    const release = (chart: string, values: Record<string, unknown>) =>
      resource('kubernetes:helm.sh/v3:Release', { chart, version: '1.0.0', values }, 'rel');
    const sha = `sha256:${'b'.repeat(64)}`;
    expect(
      await violations(imagesPinnedByDigest, release('cert-manager', { image: { digest: sha } })),
    ).toEqual([]);
    expect(
      await violations(
        imagesPinnedByDigest,
        release('cert-manager', { webhook: { image: { digest: 'latest' } } }),
      ),
    ).toEqual(['Helm release rel: values.webhook.image.digest "latest" is not a sha256 digest']);
    expect(
      await violations(
        imagesPinnedByDigest,
        release('strimzi-kafka-operator', { kafka: { image: { tag: '0.50.1-kafka-4.1.1' } } }),
      ),
    ).toEqual([
      'Helm release rel: values.kafka.image.tag is set without values.kafka.image.digest; this chart takes a digest',
    ]);
    expect(
      await violations(
        imagesPinnedByDigest,
        release('some-chart', { sidecar: { image: 'docker.io/library/busybox:1.36' } }),
      ),
    ).toEqual([
      'Helm release rel: values.sidecar.image "docker.io/library/busybox:1.36" is not pinned by digest',
    ]);
  });

  it('chart-images-pinned-by-digest (advisory): names the digest values to set, or says there are none', async () => {
    expect(advisoryPolicies.map((p) => [p.name, p.enforcementLevel])).toEqual([
      ['chart-images-pinned-by-digest', 'advisory'],
    ]);
    const release = (chart: string, values: Record<string, unknown>) =>
      resource('kubernetes:helm.sh/v3:Release', { chart, version: '1.0.0', values }, 'rel');
    const sha = `sha256:${'c'.repeat(64)}`;
    const pinned = {
      image: { digest: sha },
      webhook: { image: { digest: sha } },
      cainjector: { image: { digest: sha } },
      acmesolver: { image: { digest: sha } },
      startupapicheck: { image: { digest: sha } },
    };
    expect(await violations(chartImagesPinnedByDigest, release('cert-manager', pinned))).toEqual(
      [],
    );
    expect(
      await violations(
        chartImagesPinnedByDigest,
        release('cert-manager', { image: { digest: sha } }),
      ),
    ).toEqual([
      'Helm release rel (cert-manager): set values.webhook.image.digest, values.cainjector.image.digest, values.acmesolver.image.digest, values.startupapicheck.image.digest to sha256 digests',
    ]);
    expect(
      await violations(
        chartImagesPinnedByDigest,
        release('oci://ghcr.io/nginx/charts/nginx-gateway-fabric', {}),
      ),
    ).toEqual([
      'Helm release rel (nginx-gateway-fabric): the chart takes no image digest; its images are pulled by tag',
    ]);
  });

  it('authorization-allow-needs-from: passes named callers and DENY, rejects ALLOW without from', async () => {
    const type = 'kubernetes:security.istio.io/v1:AuthorizationPolicy';
    const ok = resource(type, {
      spec: {
        action: 'ALLOW',
        rules: [{ from: [{ source: { principals: ['trellis.local/ns/trellis/sa/ingress'] } }] }],
      },
    });
    expect(await violations(authorizationAllowNeedsFrom, ok)).toEqual([]);
    const deny = resource(type, {
      spec: { action: 'DENY', rules: [{ to: [{ operation: { paths: ['/admin'] } }] }] },
    });
    expect(await violations(authorizationAllowNeedsFrom, deny)).toEqual([]);
    const open = resource(type, {
      spec: { rules: [{ to: [{ operation: { methods: ['GET'] } }] }] },
    });
    expect(await violations(authorizationAllowNeedsFrom, open)).toEqual([
      expect.stringContaining('spec.rules[0] allows without a from.source'),
    ]);
  });

  it('no-plaintext-data-listeners: passes TLS Kafka and encrypted Cassandra, rejects plaintext', async () => {
    const kafka = (listener: Record<string, unknown>) =>
      resource('kubernetes:kafka.strimzi.io/v1:Kafka', {
        spec: { kafka: { listeners: [listener] } },
      });
    expect(
      await violations(
        noPlaintextDataListeners,
        kafka({ name: 'tls', port: 9093, tls: true, authentication: { type: 'tls' } }),
      ),
    ).toEqual([]);
    expect(
      await violations(noPlaintextDataListeners, kafka({ name: 'plain', port: 9092, tls: false })),
    ).toEqual([
      expect.stringContaining('listeners[0] is plaintext'),
      expect.stringContaining('authentication.type must be tls'),
    ]);
    const cluster = (yaml: Record<string, unknown>) =>
      resource('kubernetes:k8ssandra.io/v1alpha1:K8ssandraCluster', {
        spec: {
          cassandra: {
            config: { cassandraYaml: yaml },
            serverEncryptionStores: {},
            clientEncryptionStores: {},
          },
        },
      });
    const encrypted = {
      server_encryption_options: { internode_encryption: 'all' },
      client_encryption_options: { enabled: true, optional: false },
    };
    expect(await violations(noPlaintextDataListeners, cluster(encrypted))).toEqual([]);
    const plain = {
      server_encryption_options: { internode_encryption: 'none' },
      client_encryption_options: { enabled: true, optional: true },
    };
    expect(await violations(noPlaintextDataListeners, cluster(plain))).toEqual([
      expect.stringContaining('internode_encryption must be all'),
      expect.stringContaining('client_encryption_options must be enabled and not optional'),
    ]);
  });

  it('no-secrets-in-plain-config: passes secretKeyRef and Secrets, rejects literals and keys', async () => {
    const ok = deployment({
      image: digest,
      ...limits,
      env: [{ name: 'DB_PASSWORD', valueFrom: { secretKeyRef: { name: 'db', key: 'password' } } }],
    });
    expect(await violations(noSecretsInPlainConfig, ok)).toEqual([]);
    const literal = deployment({
      image: digest,
      ...limits,
      env: [{ name: 'DB_PASSWORD', value: 'hunter2' }],
    });
    expect(await violations(noSecretsInPlainConfig, literal)).toEqual([
      expect.stringContaining('(DB_PASSWORD) is a literal'),
    ]);
    const pem = '-----BEGIN EC PRIVATE KEY-----\nMHcCAQEE\n-----END EC PRIVATE KEY-----\n';
    expect(
      await violations(
        noSecretsInPlainConfig,
        resource('kubernetes:core/v1:Secret', { stringData: { 'ca-key.pem': pem } }),
      ),
    ).toEqual([]);
    // The mesh PKI's intermediates take the root key as a (secret) input: they hold key material.
    expect(
      await violations(
        noSecretsInPlainConfig,
        resource('pulumi-nodejs:dynamic/trellis-pki:IntermediateCa', { rootKeyPem: pem }),
      ),
    ).toEqual([]);
    // Any other dynamic resource with a key in its inputs is reported.
    expect(
      await violations(
        noSecretsInPlainConfig,
        resource('pulumi-nodejs:dynamic/other:Thing', { keyPem: pem }),
      ),
    ).toEqual([expect.stringContaining('keyPem holds a private key')]);
    expect(
      await violations(
        noSecretsInPlainConfig,
        resource('kubernetes:core/v1:ConfigMap', { data: { 'ca-key.pem': pem, apiToken: 'x' } }),
      ),
    ).toEqual([
      expect.stringContaining('data.ca-key.pem holds a private key'),
      expect.stringContaining('data.apiToken looks like a secret'),
    ]);
    const helm = resource('kubernetes:helm.sh/v3:Release', {
      chart: 'x',
      values: { auth: { adminPassword: 'p' } },
    });
    expect(await violations(noSecretsInPlainConfig, helm)).toEqual([
      expect.stringContaining('values.auth.adminPassword is a literal secret'),
    ]);
  });

  it('data-clients-present-certificates: passes a mounted Secret, rejects none, plain or writable', async () => {
    const dir = '/var/run/trellis/data-tls';
    const tlsEnv = ['CASSANDRA', 'KAFKA'].flatMap((s) =>
      ['CA', 'CERT', 'KEY'].map((f) => ({
        name: `${s}_TLS_${f}_FILE`,
        value: `${dir}/${f.toLowerCase()}.pem`,
      })),
    );
    const client = (opts: {
      env?: { name: string; value: string }[];
      volume?: Record<string, unknown>;
      readOnly?: boolean;
    }) =>
      resource('kubernetes:apps/v1:Deployment', {
        metadata: { name: 'orders-api' },
        spec: {
          template: {
            spec: {
              volumes: [{ name: 'data-tls', ...(opts.volume ?? {}) }],
              containers: [
                {
                  name: 'app',
                  env: [
                    { name: 'CASSANDRA_CONTACT_POINTS', value: 'c:9042' },
                    { name: 'KAFKA_BROKERS', value: 'k:9093' },
                    ...(opts.env ?? []),
                  ],
                  volumeMounts: [
                    { name: 'data-tls', mountPath: dir, readOnly: opts.readOnly ?? true },
                  ],
                },
              ],
            },
          },
        },
      });
    const projected = {
      projected: {
        sources: [{ secret: { name: 'orders-api-client-tls' } }, { configMap: { name: 'trust' } }],
      },
    };
    expect(
      await violations(dataClientsPresentCertificates, client({ env: tlsEnv, volume: projected })),
    ).toEqual([]);
    expect(
      await violations(
        dataClientsPresentCertificates,
        client({ env: tlsEnv, volume: { secret: { secretName: 'x' } } }),
      ),
    ).toEqual([]);
    // The k8s services before issue 12: addresses, no certificate.
    const none = await violations(dataClientsPresentCertificates, client({ volume: projected }));
    expect(none).toHaveLength(6);
    expect(none[0]).toContain('connects to Cassandra but sets no CASSANDRA_TLS_CA_FILE');
    expect(none[5]).toContain('connects to Kafka but sets no KAFKA_TLS_KEY_FILE');
    const plain = { configMap: { name: 'trust' } };
    expect(
      await violations(dataClientsPresentCertificates, client({ env: tlsEnv, volume: plain })),
    ).toEqual(
      tlsEnv.map((e) =>
        expect.stringContaining(
          `${e.name} (${e.value}) is not under a read-only mount of a Secret`,
        ),
      ),
    );
    expect(
      await violations(
        dataClientsPresentCertificates,
        client({ env: tlsEnv, volume: projected, readOnly: false }),
      ),
    ).toHaveLength(6);
    const elsewhere = tlsEnv.map((e) => ({ ...e, value: e.value.replace(dir, '/tmp') }));
    expect(
      await violations(
        dataClientsPresentCertificates,
        client({ env: elsewhere, volume: projected }),
      ),
    ).toHaveLength(6);
    // A container that reaches no data store is not concerned.
    expect(
      await violations(dataClientsPresentCertificates, deployment({ image: digest, ...limits })),
    ).toEqual([]);
  });
});
