import { X509Certificate } from 'node:crypto';
import { resolve } from 'node:path';
import { intermediateCaType, rootCaType } from '@trellis/components/pki/meshCa';
import { isSecretValue, RecordingMocks } from '@trellis/components/testing/mocks';
import type { RecordedResource, StateFn } from '@trellis/components/testing/mocks';
import { policyViolations } from '@trellis/components/testing/policyCheck';
import { pkiStackReference, testRootCa } from '@trellis/components/testing/rootCa';
import type { PemRoot } from '@trellis/components/testing/rootCa';
import { stackConfig, stackRunner } from '@trellis/components/testing/stack';
import type { StackRun } from '@trellis/components/testing/stack';
import { testBuildOutput } from '@trellis/components/testing/images';
import type { TestBuildOutput } from '@trellis/components/testing/images';
import { loadModelFile, referenceModelPath } from '@trellis/components/model';
import { serviceEnvProblems } from '@trellis/components/services';
import { beforeAll, describe, expect, it } from 'vitest';

const dir = resolve(import.meta.dirname, '..');
const dbPassword = 'aws-db-password-never-in-outputs-91c2';
const oidcIssuer = 'https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF';
let root: PemRoot;
let build: TestBuildOutput;
const runs = new Map<string, StackRun>();

const arn = (name: string) => `arn:aws:mock:us-east-1:123456789012:${name}`;

function mocksFor(): RecordingMocks {
  const aws = (name: string) => ({ arn: arn(name), name });
  const states: Record<string, StateFn> = {
    'pulumi:pulumi:StackReference': pkiStackReference(root),
    'aws:eks/cluster:Cluster': (name) => ({
      ...aws(name),
      endpoint: 'https://ABCDEF.gr7.us-east-1.eks.amazonaws.com',
      certificateAuthority: { data: 'LS0tLS1CRUdJTi1NT0NLLUNBLS0tLS0=' },
      identities: [{ oidcs: [{ issuer: oidcIssuer }] }],
      vpcConfig: { clusterSecurityGroupId: 'sg-cluster' },
    }),
    'aws:eks/nodeGroup:NodeGroup': (name) => ({
      ...aws(name),
      resources: [{ autoscalingGroups: [{ name: 'eks-nodes-asg' }] }],
    }),
    'aws:apigatewayv2/api:Api': (name) => ({
      ...aws(name),
      apiEndpoint: 'https://abc123.execute-api.us-east-1.amazonaws.com',
    }),
    'aws:sqs/queue:Queue': (name) => ({
      ...aws(name),
      url: `https://sqs.us-east-1.amazonaws.com/123456789012/${name}`,
    }),
  };
  return new RecordingMocks({
    states,
    fallback: (type, name) => (type.startsWith('aws:') ? aws(name) : {}),
  });
}

const runProject = stackRunner({
  project: 'trellis-aws',
  dir,
  load: () => import('../index.ts'),
  mocks: mocksFor,
  secrets: { 'trellis:keycloakDbPassword': dbPassword },
  // The committed trellis:images, with the build output of this test run.
  config: (stack) => ({
    'trellis:images': JSON.stringify({
      ...(JSON.parse(stackConfig(dir, stack)['trellis:images'] as string) as object),
      buildDir: build.dir,
    }),
  }),
});

const inputsOf = (r: StackRun, type: string, suffix: string) => r.mocks.one(type, suffix).inputs;

/** A container's environment entry (plain values only here: the services take no Secret). */
interface EnvVar {
  name: string;
  value?: string;
}

beforeAll(async () => {
  build = testBuildOutput(['orders-api', 'ledger', 'orders-writer']);
  root = await testRootCa();
  for (const stack of ['dev', 'prod-us']) runs.set(stack, await runProject(stack));
}, 60_000);

describe.each(['dev', 'prod-us'])('infra/aws stack %s', (stack) => {
  const r = () => runs.get(stack) as StackRun;

  it('makes no provider call it did not expect', () => {
    expect(r().mocks.unexpectedCalls).toEqual([]);
  });

  it('checks JWTs at the edge with the platform issuer and the model audience', () => {
    const auth = inputsOf(r(), 'aws:apigatewayv2/authorizer:Authorizer', '-jwt');
    expect(auth.authorizerType).toBe('JWT');
    expect(auth.identitySources).toEqual(['$request.header.Authorization']);
    const jwt = auth.jwtConfiguration as { issuer: string; audiences: string[] };
    expect(jwt.issuer).toBe(r().outputs.issuer);
    expect(jwt.issuer).toMatch(/^https:\/\/auth\..+\/realms\/trellis$/);
    expect(jwt.audiences).toEqual(['trellis-api']);
    // The mesh checks the very same issuer.
    const ras = r().mocks.kind('RequestAuthentication');
    expect(ras.length).toBeGreaterThan(0);
    for (const ra of ras) {
      const rules = (ra.inputs.spec as { jwtRules: { issuer: string }[] }).jwtRules;
      expect(rules.map((x) => x.issuer)).toEqual([jwt.issuer]);
    }
  });

  it('has exactly the model routes, each behind the authorizer with its scopes and throttling', () => {
    const routes = r()
      .mocks.ofType('aws:apigatewayv2/route:Route')
      .map((x) => x.inputs);
    expect(routes.map((x) => x.routeKey).sort()).toEqual(['GET /orders/{id}', 'POST /orders']);
    for (const route of routes) {
      expect(route.authorizationType).toBe('JWT');
      expect(route.authorizerId).toBeTruthy();
    }
    expect(routes.find((x) => x.routeKey === 'POST /orders')?.authorizationScopes).toEqual([
      'orders:write',
    ]);
    const stage = inputsOf(r(), 'aws:apigatewayv2/stage:Stage', '-stage');
    // Throttling comes from each route's rateLimit in the model.
    const model = loadModelFile(referenceModelPath);
    const expected = Object.values(model.routes)
      .filter((x) => x.rateLimit)
      .map((x) => ({
        routeKey: `${x.method} ${x.path}`,
        throttlingRateLimit: x.rateLimit?.requestsPerSecond,
        throttlingBurstLimit: x.rateLimit?.burst,
      }));
    expect(expected.length).toBe(2);
    expect(stage.routeSettings).toEqual(expect.arrayContaining(expected));
    const logs = r().mocks.one('aws:cloudwatch/logGroup:LogGroup', '-access-logs');
    expect((stage.accessLogSettings as { destinationArn: string }).destinationArn).toBe(
      logs.state.arn,
    );
  });

  it('reaches the NGINX gateway over TLS only, through a VPC link and an internal NLB', () => {
    const host = `api.${stack === 'dev' ? 'dev' : 'us'}.trellis.example`;
    expect(r().outputs.gatewayHost).toBe(host);
    const integ = inputsOf(r(), 'aws:apigatewayv2/integration:Integration', '-gateway');
    const listener = r().mocks.one('aws:lb/listener:Listener', '-listener');
    expect(integ).toMatchObject({ connectionType: 'VPC_LINK', integrationType: 'HTTP_PROXY' });
    expect(integ.integrationUri).toBe(listener.state.arn);
    // HTTPS to the gateway, verified against its host name, which the compiled routes match.
    expect(integ.tlsConfig).toEqual({ serverNameToVerify: host });
    expect(integ.requestParameters).toEqual({ 'overwrite:header.host': host });
    // The NLB passes TLS through (TCP 443): NGINX's certificate is the one API Gateway checks.
    expect(listener.inputs).toMatchObject({ port: 443, protocol: 'TCP' });
    expect(inputsOf(r(), 'aws:lb/loadBalancer:LoadBalancer', '-nlb')).toMatchObject({
      loadBalancerType: 'network',
      internal: true,
    });
    expect(inputsOf(r(), 'aws:lb/targetGroup:TargetGroup', '-tg').port).toBe(30080);
    const ngf = r().mocks.one('kubernetes:helm.sh/v3:Release', '-ngf');
    expect((ngf.inputs.values as { nginx: { service: unknown } }).nginx.service).toEqual({
      type: 'NodePort',
      externalTrafficPolicy: 'Cluster',
      nodePorts: [{ port: 30080, listenerPort: 443 }],
    });
    const [gw] = r().mocks.kind('Gateway');
    expect((gw?.inputs.spec as { listeners: unknown[] }).listeners).toEqual([
      expect.objectContaining({ hostname: host, port: 443, protocol: 'HTTPS' }),
      expect.objectContaining({ name: 'https-issuer', port: 443, protocol: 'HTTPS' }),
    ]);
    for (const route of r().mocks.kind('HTTPRoute')) {
      const m = route.inputs.metadata as { name: string };
      if (m.name !== 'keycloak')
        expect((route.inputs.spec as { hostnames: string[] }).hostnames).toEqual([host]);
    }
    const ingress = inputsOf(
      r(),
      'aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule',
      '-nodeport',
    );
    expect(ingress).toMatchObject({ cidrIpv4: '10.40.0.0/16', fromPort: 30080, toPort: 30080 });
    const linkSg = inputsOf(r(), 'aws:ec2/securityGroup:SecurityGroup', '-vpclink-sg');
    expect(linkSg.egress).toEqual([
      { protocol: 'tcp', fromPort: 443, toPort: 443, cidrBlocks: ['10.40.0.0/16'] },
    ]);
  });

  it('issues the gateway certificate by ACME DNS-01 with a role limited to challenge records', () => {
    const [cert] = r()
      .mocks.kind('Certificate')
      .filter((c) => (c.inputs.metadata as { namespace: string }).namespace === 'trellis-gateway');
    expect(cert?.inputs.spec).toMatchObject({
      secretName: 'trellis-edge-tls',
      issuerRef: { kind: 'ClusterIssuer', name: 'trellis-edge-acme' },
    });
    const [issuer] = r().mocks.kind('ClusterIssuer');
    expect(issuer?.inputs).toMatchObject({
      metadata: { name: 'trellis-edge-acme' },
      spec: {
        acme: {
          server: 'https://acme-v02.api.letsencrypt.org/directory',
          solvers: [
            {
              selector: { dnsZones: ['trellis.example'] },
              dns01: {
                route53: { region: 'us-east-1', hostedZoneID: 'Z0123456789TRELLISEXAMPLE' },
              },
            },
          ],
        },
      },
    });
    const zone = 'arn:aws:route53:::hostedzone/Z0123456789TRELLISEXAMPLE';
    const policy = JSON.parse(
      inputsOf(r(), 'aws:iam/rolePolicy:RolePolicy', 'trellis-cert-manager-policy')
        .policy as string,
    );
    expect(policy.Statement).toEqual([
      { Effect: 'Allow', Action: ['route53:GetChange'], Resource: ['arn:aws:route53:::change/*'] },
      { Effect: 'Allow', Action: ['route53:ListResourceRecordSets'], Resource: [zone] },
      {
        Effect: 'Allow',
        Action: ['route53:ChangeResourceRecordSets'],
        Resource: [zone],
        Condition: {
          'ForAllValues:StringEquals': { 'route53:ChangeResourceRecordSetsRecordTypes': ['TXT'] },
          'ForAllValues:StringLike': {
            'route53:ChangeResourceRecordSetsNormalizedRecordNames': ['_acme-challenge.*'],
          },
        },
      },
    ]);
    const trust = JSON.parse(
      inputsOf(r(), 'aws:iam/role:Role', 'trellis-cert-manager-role').assumeRolePolicy as string,
    );
    expect(Object.values(trust.Statement[0].Condition.StringEquals)).toContain(
      'system:serviceaccount:cert-manager:cert-manager',
    );
    const cm = r().mocks.one('kubernetes:helm.sh/v3:Release', '-cert-manager-release');
    const role = r().mocks.one('aws:iam/role:Role', 'trellis-cert-manager-role').state.arn;
    expect(cm.inputs.values).toMatchObject({
      serviceAccount: { annotations: { 'eks.amazonaws.com/role-arn': role } },
      securityContext: { fsGroup: 1001 },
    });
  });

  it('gives each service account a least-privilege IRSA role on the write queue', () => {
    const queueArn = r().mocks.one('aws:sqs/queue:Queue', 'writes-queue').state.arn;
    const policy = (w: string) =>
      JSON.parse(
        inputsOf(r(), 'aws:iam/rolePolicy:RolePolicy', `trellis-${w}-policy`).policy as string,
      );
    // orders-api may only send accepted orders to the queue.
    expect(policy('orders-api').Statement).toEqual([
      { Effect: 'Allow', Action: ['sqs:SendMessage', 'sqs:GetQueueUrl'], Resource: [queueArn] },
    ]);
    // The batch writer may only receive them, hold them while a batch is written, and delete them.
    expect(policy('orders-writer').Statement).toEqual([
      {
        Effect: 'Allow',
        Action: [
          'sqs:ReceiveMessage',
          'sqs:DeleteMessage',
          'sqs:ChangeMessageVisibility',
          'sqs:GetQueueAttributes',
        ],
        Resource: [queueArn],
      },
    ]);
    // No other service has a queue role: ledger reads orders.v1 from Kafka, not the queue.
    expect(
      r()
        .mocks.ofType('aws:iam/rolePolicy:RolePolicy')
        .map((x) => x.name)
        .sort(),
    ).toEqual([
      'trellis-cert-manager-policy',
      'trellis-orders-api-policy',
      'trellis-orders-writer-policy',
    ]);
    const host = oidcIssuer.replace('https://', '');
    const roleArn = (w: string) =>
      r().mocks.one('aws:iam/role:Role', `trellis-${w}-role`).state.arn;
    const annotations = (w: string) =>
      (
        r()
          .mocks.ofType('kubernetes:core/v1:ServiceAccount')
          .find((s) => (s.inputs.metadata as { name: string }).name === w) as RecordedResource
      ).inputs.metadata as { annotations?: Record<string, string> };
    for (const w of ['orders-api', 'orders-writer']) {
      // Only the workload's own ServiceAccount may assume its role...
      const trust = JSON.parse(
        inputsOf(r(), 'aws:iam/role:Role', `trellis-${w}-role`).assumeRolePolicy as string,
      );
      expect(trust.Statement[0].Condition.StringEquals).toEqual({
        [`${host}:sub`]: `system:serviceaccount:trellis:${w}`,
        [`${host}:aud`]: 'sts.amazonaws.com',
      });
      // ...and that ServiceAccount carries it.
      expect(roleArn(w)).toMatch(/^arn:aws:mock/);
      expect(annotations(w).annotations?.['eks.amazonaws.com/role-arn']).toBe(roleArn(w));
    }
    expect(annotations('ledger').annotations?.['eks.amazonaws.com/role-arn']).toBeUndefined();
  });

  it('points orders-api and orders-writer at the SQS queue, and no other service', () => {
    const url = r().mocks.one('aws:sqs/queue:Queue', 'writes-queue').state.url;
    expect(url).toMatch(/^https:\/\/sqs\.us-east-1\.amazonaws\.com\//);
    const envOf = (w: string) => {
      const d = r()
        .mocks.ofType('kubernetes:apps/v1:Deployment')
        .find((x) => (x.inputs.metadata as { name: string }).name === w) as RecordedResource;
      const pod = (d.inputs.spec as { template: { spec: { containers: { env: EnvVar[] }[] } } })
        .template.spec;
      return Object.fromEntries(pod.containers[0]?.env.map((e) => [e.name, e.value]) ?? []);
    };
    for (const w of ['orders-api', 'orders-writer'] as const) {
      const env = envOf(w);
      expect(env).toMatchObject({
        ORDERS_QUEUE: 'sqs',
        SQS_QUEUE_URL: url,
        SQS_REGION: 'us-east-1',
      });
      // In AWS the SDK finds SQS itself; the endpoint override is for ElasticMQ only.
      expect(env.SQS_ENDPOINT).toBeUndefined();
      expect(serviceEnvProblems(w, env)).toEqual([]);
    }
    expect(Object.keys(envOf('ledger')).filter((k) => /^(ORDERS_QUEUE|SQS_)/.test(k))).toEqual([]);
  });

  it('encrypts the queue and refuses non-TLS access', () => {
    const q = inputsOf(r(), 'aws:sqs/queue:Queue', 'writes-queue');
    expect(q.sqsManagedSseEnabled).toBe(true);
    expect(JSON.parse(q.redrivePolicy as string).maxReceiveCount).toBe(5);
    // FIFO with explicit deduplication ids (ADR 0021), and so is its dead-letter queue.
    for (const name of ['writes-queue', 'writes-dlq']) {
      const fifo = inputsOf(r(), 'aws:sqs/queue:Queue', name);
      expect(fifo.fifoQueue, name).toBe(true);
      expect(fifo.contentBasedDeduplication, name).toBe(false);
    }
    const policy = JSON.parse(
      inputsOf(r(), 'aws:sqs/queuePolicy:QueuePolicy', 'writes-queue-tls-only').policy as string,
    );
    expect(policy.Statement[0]).toMatchObject({
      Effect: 'Deny',
      Condition: { Bool: { 'aws:SecureTransport': 'false' } },
    });
  });

  it('keeps the EKS API private, encrypts Secrets with a rotating key, and installs the platform on it', () => {
    const cluster = inputsOf(r(), 'aws:eks/cluster:Cluster', '-eks');
    expect(cluster.vpcConfig).toMatchObject({
      endpointPrivateAccess: true,
      endpointPublicAccess: false,
    });
    expect((cluster.encryptionConfig as { resources: string[] }).resources).toEqual(['secrets']);
    expect(inputsOf(r(), 'aws:kms/key:Key', '-secrets-key').enableKeyRotation).toBe(true);
    const provider = r().mocks.one('pulumi:providers:kubernetes', 'trellis-eks');
    expect(isSecretValue(provider.raw.kubeconfig)).toBe(true);
    expect(r().mocks.kind('K8ssandraCluster')).toHaveLength(1);
  });

  it('plugs an intermediate signed by the root into Istio (real X.509)', () => {
    const secret = r().mocks.resources.find(
      (x) =>
        x.type === 'kubernetes:core/v1:Secret' &&
        (x.inputs.metadata as { name: string }).name === 'cacerts',
    ) as RecordedResource;
    const data = secret.inputs.stringData as Record<string, string>;
    const inter = new X509Certificate(data['ca-cert.pem'] as string);
    expect(inter.verify(new X509Certificate(data['root-cert.pem'] as string).publicKey)).toBe(true);
    if (stack === 'prod-us')
      expect(inter.verify(new X509Certificate(root.certPem).publicKey)).toBe(true);
  });

  it('passes every rule of the policy pack', async () => {
    expect(await policyViolations(r().mocks.resources)).toEqual([]);
  });

  it('keeps secrets out of plain outputs; the kubeconfig output is secret', () => {
    expect(r().secretOutputs).toEqual(['kubeconfig']);
    const plain = JSON.stringify(Object.entries(r().outputs).filter(([k]) => k !== 'kubeconfig'));
    expect(plain).not.toContain(dbPassword);
    expect(plain).not.toMatch(/PRIVATE KEY/);
    const keys = [rootCaType, intermediateCaType].flatMap((t) => r().mocks.ofType(t));
    expect(keys.length).toBeGreaterThanOrEqual(2);
    for (const k of keys) {
      expect(plain).not.toContain((k.state.keyPem as string).split('\n')[1]);
    }
  });
});

describe('infra/aws in-cluster Keycloak', () => {
  it('runs as many Keycloak instances as trellis:idp.instances says', async () => {
    const config = stackConfig(dir, 'dev');
    const idp = { ...JSON.parse(config['trellis:idp'] as string), instances: 3 };
    const r = await runProject('dev', { config: { 'trellis:idp': JSON.stringify(idp) } });
    const [kc] = r.mocks.kind('Keycloak');
    expect((kc?.inputs.spec as { instances: number }).instances).toBe(3);
  });
});

describe('infra/aws config validation', () => {
  const bad = (patch: Record<string, string>, secrets = true) =>
    runProject('dev', { config: patch, secrets: secrets ? undefined : {} });

  it('rejects a bad availability zone, naming the key', async () => {
    await expect(
      bad({ 'trellis:network': JSON.stringify({ availabilityZones: ['us-east-1a', 'east'] }) }),
    ).rejects.toThrow(/trellis:network\.availabilityZones\[1\]: must be an AZ name/);
  });

  it('rejects a NodePort outside the Kubernetes range, naming the key', async () => {
    await expect(bad({ 'trellis:edge': JSON.stringify({ gatewayNodePort: 80 }) })).rejects.toThrow(
      /trellis:edge\.gatewayNodePort/,
    );
  });

  it('rejects an ACME zone ID that is not a Route 53 zone, naming the key', async () => {
    const edge = {
      gatewayNodePort: 30080,
      acme: { email: 'a@trellis.example', hostedZoneId: 'zone-1', dnsZone: 'trellis.example' },
    };
    await expect(bad({ 'trellis:edge': JSON.stringify(edge) })).rejects.toThrow(
      /trellis:edge\.acme\.hostedZoneId: must be a Route 53 hosted zone ID/,
    );
  });

  it('rejects a gateway host outside the ACME zone, or more than one', async () => {
    await expect(
      bad({ 'trellis:hosts': JSON.stringify({ localhost: 'api.other.example' }) }),
    ).rejects.toThrow(/trellis:hosts: api\.other\.example is not in trellis:edge\.acme\.dnsZone/);
    await expect(
      bad({
        'trellis:hosts': JSON.stringify({
          localhost: 'a.trellis.example',
          'x.local': 'b.trellis.example',
        }),
      }),
    ).rejects.toThrow(/trellis:hosts: API Gateway reaches one gateway host, got 2/);
  });

  it('requires the Keycloak database password as a secret', async () => {
    await expect(bad({}, false)).rejects.toThrow(/trellis:keycloakDbPassword: required/);
  });

  it('rejects an EKS API open to the world', async () => {
    await expect(
      bad({ 'trellis:eks': JSON.stringify({ publicAccessCidrs: ['0.0.0.0/0'] }) }),
    ).rejects.toThrow(/publicAccessCidrs must not contain 0\.0\.0\.0\/0/);
  });
});
