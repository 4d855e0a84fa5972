import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { labelKeys } from '@trellis/contracts';
import {
  envProblems,
  formatEnvProblems,
  type EnvProblem,
  type EnvSchema,
} from '@trellis/service-platform/env-schema';
import { dataTls, type IssuerRef } from './dataTls.ts';

const defaults = {
  replicas: 2,
  resources: {
    requests: { cpu: '100m', memory: '128Mi' },
    limits: { cpu: '1', memory: '512Mi' },
  },
  healthPath: '/healthz',
  readyPath: '/readyz',
  // Short-lived, like an SVID: the services re-read the files for each new connection.
  clientCertDuration: '24h',
  clientCertRenewBefore: '8h',
} as const;

/** A client certificate for the data stores, issued by cert-manager into the service's namespace. */
export interface ClientCertificateArgs {
  /** The issuer whose CA the data stores trust (DataCaIssuer). */
  issuer: IssuerRef;
  /** Subject CN, and the whole subject: Kafka's principal is `User:CN=<commonName>`. */
  commonName: string;
  /** URI SANs: the workload's SPIFFE ID, the identity Cassandra maps to its role. */
  uris: readonly string[];
  /** PEM bundle the data stores' server certificates chain to (public), mounted beside the key. */
  trustBundlePem: pulumi.Input<string>;
  /** @default "24h" */
  duration?: string;
  /** @default "8h" */
  renewBefore?: string;
}

/** Arguments of {@link MeshService}. */
export interface MeshServiceArgs {
  /** Namespace (already labelled into the mesh). */
  namespace: pulumi.Input<string>;
  /** ServiceAccount name: the `sa` part of the SPIFFE ID spiffe://<td>/ns/<ns>/sa/<serviceAccount>. */
  serviceAccount: string;
  /** Image pinned by digest: `registry/repo@sha256:<64 hex>`. Tags are refused. */
  image: string;
  /** Container ports by name (the model's workload ports). */
  ports: { name: string; port: number; protocol: 'http' | 'grpc' | 'tcp' }[];
  /** @default 2 */
  replicas?: number;
  /** @default requests 100m/128Mi, limits 1/512Mi */
  resources?: { requests: Record<string, string>; limits: Record<string, string> };
  /** Extra environment (no secrets: use secretEnv). */
  env?: Record<string, pulumi.Input<string>>;
  /**
   * JSON Schema the environment must satisfy: the service's exported env schema. Checked once the
   * values are known, before the Deployment is created; a problem fails the deployment naming the
   * variable. Variables from `secretEnv` count as set. @default no check
   */
  envSchema?: EnvSchema;
  /** Environment from Secrets: variable → { secret name, key }. */
  secretEnv?: Record<string, { secret: pulumi.Input<string>; key: string }>;
  /** Annotations for the ServiceAccount (e.g. eks.amazonaws.com/role-arn for IRSA). */
  serviceAccountAnnotations?: Record<string, pulumi.Input<string>>;
  /** @default "/healthz" */
  healthPath?: string;
  /** @default "/readyz" */
  readyPath?: string;
  /**
   * Issue a client certificate and mount it read-only at `dataTls.mountPath` (files `dataTls.files`).
   * @default none
   */
  clientCertificate?: ClientCertificateArgs;
}

/** Throws unless the client certificate can carry the identities it is for. */
function checkClientCertificate(name: string, c: ClientCertificateArgs, self: pulumi.Resource) {
  const fail = (msg: string) => {
    throw new pulumi.ResourceError(`MeshService ${name}: clientCertificate.${msg}`, self);
  };
  // RFC 5280 ub-common-name; no DN metacharacters, so the Kafka principal is exactly CN=<name>.
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(c.commonName))
    fail(`commonName must be 1-64 letters, digits, ".", "_" or "-", got "${c.commonName}"`);
  if (c.uris.length === 0) fail('uris must not be empty');
  c.uris.forEach((u, i) => {
    if (!/^spiffe:\/\/[^/]+\/.+$/.test(u)) fail(`uris[${i}] must be a SPIFFE ID, got "${u}"`);
  });
}

/**
 * {@link envProblems} for a container's environment: `plain` values are checked; variables set from
 * Secrets (`secretNames`) must be declared, and count as set, but their values are not known here.
 */
export function containerEnvProblems(
  schema: EnvSchema,
  plain: Readonly<Record<string, string>>,
  secretNames: readonly string[],
): EnvProblem[] {
  const fromSecrets = new Set(secretNames);
  const declared = schema.properties as Record<string, unknown>;
  return [
    ...envProblems(schema, plain).filter(
      (p) => !(fromSecrets.has(p.variable) && p.problem === 'is required but not set'),
    ),
    ...secretNames
      .filter((n) => !Object.hasOwn(declared, n))
      .map((variable) => ({ variable, problem: 'is not a variable this service reads' })),
  ];
}

const digestPinned = /^[a-z0-9.-]+(?::\d+)?(?:\/[a-z0-9._-]+)+@sha256:[a-f0-9]{64}$/;

/**
 * A smoke service in the mesh: a ServiceAccount named for its SPIFFE identity, a Deployment with a
 * digest-pinned image, probes, requests and limits and a locked-down security context, a Service and a
 * PodDisruptionBudget.
 */
export class MeshService extends pulumi.ComponentResource {
  /** The ServiceAccount name (SPIFFE `sa` segment). */
  public readonly serviceAccountName: pulumi.Output<string>;
  /** In-cluster DNS name of the Service. */
  public readonly host: pulumi.Output<string>;

  constructor(name: string, args: MeshServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:MeshService', name, {}, opts);
    if (!digestPinned.test(args.image)) {
      throw new pulumi.ResourceError(
        `MeshService ${name}: image must be pinned by digest (repo@sha256:<64 hex>), got "${args.image}"`,
        this,
      );
    }
    if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/.test(args.serviceAccount)) {
      throw new pulumi.ResourceError(
        `MeshService ${name}: serviceAccount must be a DNS label, got "${args.serviceAccount}"`,
        this,
      );
    }
    if (args.ports.length === 0) {
      throw new pulumi.ResourceError(`MeshService ${name}: ports must not be empty`, this);
    }
    if (args.clientCertificate) checkClientCertificate(name, args.clientCertificate, this);
    const replicas = args.replicas ?? defaults.replicas;
    if (!Number.isInteger(replicas) || replicas < 1) {
      throw new pulumi.ResourceError(`MeshService ${name}: replicas must be at least 1`, this);
    }
    const resources = args.resources ?? defaults.resources;
    if (!resources.limits.cpu || !resources.limits.memory) {
      throw new pulumi.ResourceError(
        `MeshService ${name}: resources.limits needs cpu and memory`,
        this,
      );
    }
    const child = { parent: this };
    const selector = { [labelKeys.app]: args.serviceAccount };
    const labels = { ...selector, [labelKeys.partOf]: 'trellis' };
    const sa = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      {
        metadata: {
          name: args.serviceAccount,
          namespace: args.namespace,
          annotations: args.serviceAccountAnnotations ?? {},
        },
        automountServiceAccountToken: false,
      },
      child,
    );
    const http = args.ports.find((p) => p.protocol === 'http');
    const probe = (path: string): k8s.types.input.core.v1.Probe =>
      http
        ? { httpGet: { path, port: http.name }, periodSeconds: 5, failureThreshold: 3 }
        : { tcpSocket: { port: args.ports[0]?.port ?? 0 }, periodSeconds: 5, failureThreshold: 3 };
    const secretEnv = Object.entries(args.secretEnv ?? {}).map(([k, ref]) => ({
      name: k,
      valueFrom: { secretKeyRef: { name: ref.secret, key: ref.key } },
    }));
    const schema = args.envSchema;
    const env = pulumi.output(args.env ?? {}).apply((plain) => {
      if (schema) {
        const problems = containerEnvProblems(schema, plain, Object.keys(args.secretEnv ?? {}));
        if (problems.length > 0) {
          throw new pulumi.ResourceError(
            `MeshService ${name}: env does not match the service's env schema:\n${formatEnvProblems(problems)}`,
            this,
          );
        }
      }
      return [...Object.entries(plain).map(([k, value]) => ({ name: k, value })), ...secretEnv];
    });
    const tls = args.clientCertificate
      ? clientCertificate(name, args.serviceAccount, args.namespace, args.clientCertificate, this)
      : undefined;
    new k8s.apps.v1.Deployment(
      `${name}-deploy`,
      {
        metadata: { name: args.serviceAccount, namespace: args.namespace, labels },
        spec: {
          replicas,
          selector: { matchLabels: selector },
          template: {
            metadata: { labels },
            spec: {
              serviceAccountName: sa.metadata.name,
              securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
              ...(tls ? { volumes: [tls.volume] } : {}),
              containers: [
                {
                  name: args.serviceAccount,
                  image: args.image,
                  ports: args.ports.map((p) => ({ name: p.name, containerPort: p.port })),
                  env,
                  ...(tls ? { volumeMounts: [tls.mount] } : {}),
                  resources,
                  readinessProbe: probe(args.readyPath ?? defaults.readyPath),
                  livenessProbe: probe(args.healthPath ?? defaults.healthPath),
                  startupProbe: {
                    ...probe(args.healthPath ?? defaults.healthPath),
                    failureThreshold: 30,
                  },
                  securityContext: {
                    allowPrivilegeEscalation: false,
                    readOnlyRootFilesystem: true,
                    capabilities: { drop: ['ALL'] },
                  },
                },
              ],
            },
          },
        },
      },
      { parent: this, dependsOn: tls ? tls.resources : [] },
    );
    const svc = new k8s.core.v1.Service(
      `${name}-svc`,
      {
        metadata: { name: args.serviceAccount, namespace: args.namespace, labels },
        spec: {
          type: 'ClusterIP',
          selector,
          // Istio reads the protocol from appProtocol (istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/).
          ports: args.ports.map((p) => ({
            name: p.name,
            port: p.port,
            targetPort: p.name,
            appProtocol: p.protocol,
          })),
        },
      },
      child,
    );
    new k8s.policy.v1.PodDisruptionBudget(
      `${name}-pdb`,
      {
        metadata: { name: args.serviceAccount, namespace: args.namespace },
        spec: { maxUnavailable: 1, selector: { matchLabels: selector } },
      },
      child,
    );
    this.serviceAccountName = sa.metadata.name;
    this.host = pulumi.interpolate`${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`;
    this.registerOutputs({ serviceAccountName: this.serviceAccountName, host: this.host });
  }
}

/**
 * The Certificate and trust bundle of a service, and the projected volume that puts them in one
 * read-only directory under the file names the services are configured with ({@link dataTls}).
 */
function clientCertificate(
  name: string,
  serviceAccount: string,
  namespace: pulumi.Input<string>,
  c: ClientCertificateArgs,
  parent: pulumi.Resource,
): {
  volume: k8s.types.input.core.v1.Volume;
  mount: k8s.types.input.core.v1.VolumeMount;
  resources: pulumi.Resource[];
} {
  const secretName = `${serviceAccount}-client-tls`;
  const cert = new k8s.apiextensions.CustomResource(
    `${name}-client-cert`,
    {
      apiVersion: 'cert-manager.io/v1',
      kind: 'Certificate',
      metadata: { name: `${serviceAccount}-client`, namespace },
      spec: {
        secretName,
        issuerRef: { group: 'cert-manager.io', kind: c.issuer.kind, name: c.issuer.name },
        commonName: c.commonName,
        uris: c.uris,
        duration: c.duration ?? defaults.clientCertDuration,
        renewBefore: c.renewBefore ?? defaults.clientCertRenewBefore,
        privateKey: { algorithm: 'ECDSA', size: 256, encoding: 'PKCS8', rotationPolicy: 'Always' },
        usages: ['client auth', 'digital signature'],
      },
    },
    { parent },
  );
  const trust = new k8s.core.v1.ConfigMap(
    `${name}-trust`,
    {
      metadata: { name: `${serviceAccount}-data-trust`, namespace },
      data: { [dataTls.files.ca]: c.trustBundlePem },
    },
    { parent },
  );
  return {
    volume: {
      name: 'data-tls',
      projected: {
        // Readable by the container's (non-root, arbitrary) user; the directory is its own.
        defaultMode: 0o444,
        sources: [
          {
            secret: {
              name: secretName,
              items: [
                { key: 'tls.crt', path: dataTls.files.cert },
                { key: 'tls.key', path: dataTls.files.key },
              ],
            },
          },
          {
            configMap: {
              name: trust.metadata.name,
              items: [{ key: dataTls.files.ca, path: dataTls.files.ca }],
            },
          },
        ],
      },
    },
    mount: { name: 'data-tls', mountPath: dataTls.mountPath, readOnly: true },
    resources: [cert, trust],
  };
}
