/**
 * Contracts: names that two sides must spell the same way (a sidecar and the app behind it, the
 * component that writes a file and the one that reads it, the compiler that labels a pod and the
 * policy that selects it). Each is declared here once and imported by both sides, so changing one
 * side alone is impossible. Pure data: no I/O, no dependencies.
 */

/**
 * HTTP headers that carry identity from the mesh to the services. Lower-case, as Node presents
 * incoming headers and as Envoy requires in `forward_payload_header`.
 */
export const identityHeaders = {
  /**
   * The verified JWT's payload, base64url JSON: set by the local sidecar's jwt_authn
   * (`forward_payload_header`) and by Istio's RequestAuthentication (`outputPayloadToHeader`); the
   * services take the caller's subject and scopes from it.
   */
  jwtPayload: 'x-jwt-payload',
  /**
   * Envoy's x-forwarded-client-cert (XFCC): the mTLS peer's certificate details, its SPIFFE ID in
   * `URI=`. Envoy chooses the name; it is here because the services and the load tests read it.
   */
  clientCert: 'x-forwarded-client-cert',
} as const;

/**
 * One id per request, set at the edge (nginx) and kept by every hop (and on the Kafka records a request
 * produces), so that logs and events can be joined.
 */
export const requestIdHeader = 'x-request-id';

/**
 * Files of a workload's SVID directory: written (and rotated in place) by the mesh CA, read by the
 * sidecar's SDS config, the data-store clients and the tests.
 */
export const svidFiles = {
  /** PEM chain: the workload certificate, then the intermediate. */
  cert: 'cert.pem',
  /** PEM private key of `cert`. */
  key: 'key.pem',
  /** PEM trust bundle: the mesh root(s) peers are verified against. */
  bundle: 'bundle.pem',
  /** PEM private key followed by the chain: the keystore of the JVM servers (Cassandra, Kafka). */
  keystore: 'keystore.pem',
} as const;

/**
 * Files of a Trellis sidecar's own directory (local stacks): the bootstrap Envoy is started with, and
 * the directory of SDS files it watches. Written by the sidecar component, named in the bootstrap by
 * the policy's `envoyOptions`.
 */
export const sidecarFiles = {
  /** Envoy's static bootstrap (JSON). */
  bootstrap: 'envoy.json',
  /** The directory of SDS resource files (certificate and validation context), watched by Envoy. */
  sdsDir: 'sds',
  /**
   * Envoy's JSON access log, read by `./trellis audit`: in the sidecar's dir, or (a sidecar in a pod)
   * in its pod's own writable subdirectory.
   */
  accessLog: 'access.log',
} as const;

/**
 * The audit logs of a local stack's servers, relative to the server's run directory
 * (`.trellis/<stack>/run/<server>/`): written by the harness's logging config (Cassandra's logback,
 * Kafka's Log4j 2) and the ingress component, read by `./trellis audit`.
 */
export const auditLogFiles = {
  /** Cassandra's FileAuditLogger lines (`audit_logging_options`), under its `logs/`. */
  cassandra: 'logs/audit.log',
  /** Kafka's `kafka.authorizer.logger`, under its `logs/` (rolled to `.1`, `.2`, `.3`). */
  kafkaAuthorizer: 'logs/kafka-authorizer.log',
  /** nginx's JSON access log. */
  nginx: 'access.json',
  /** What a supervised process writes to stdout and stderr (services' JSON, Keycloak's events). */
  process: 'process.log',
} as const;

/** Kubernetes label keys that generated objects carry and that selectors and policies match on. */
export const labelKeys = {
  /** Set to `trellis` on every object the policy compilers emit. */
  managedBy: 'app.kubernetes.io/managed-by',
  /** Set to `trellis` on namespaces and workloads the platform deploys. */
  partOf: 'app.kubernetes.io/part-of',
  /** The model region an object was compiled for. */
  region: 'trellis.dev/region',
  /** `gateway` on the edge gateway's Service: the only one allowed to be a LoadBalancer. */
  role: 'trellis.dev/role',
  /** The pod label holding the workload name: Deployments set it, AuthorizationPolicies select on it. */
  app: 'app',
} as const;

/** Namespaces owned by platform software rather than by the model. */
export const systemNamespaces = {
  /** Istio's root namespace: istiod, and the mesh-wide PeerAuthentication. */
  istio: 'istio-system',
  /** cert-manager's controller (and its IRSA ServiceAccount on EKS). */
  certManager: 'cert-manager',
} as const;
