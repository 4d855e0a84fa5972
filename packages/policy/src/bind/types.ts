/**
 * The types of binding: the environments a model can be bound to, and the bound model that comes
 * back. `bind` (bind.ts) is the only place where an environment changes the model.
 */
import type { EnvoyEndpoint } from '../compile/envoy.ts';
import type { PolicyError } from '../errors.ts';
import type { DataService } from '../identity.ts';
import type { ValidModel } from '../validate.ts';

/** A host (IP address or DNS name) and a TCP port. */
export type Endpoint = EnvoyEndpoint;

/** Where a workload's SVID comes from: files rotated in place, or an SDS server on a Unix socket. */
export type SvidLocation =
  | {
      kind: 'files';
      /** The directory the certificate files are written to (and watched in). */
      dir: string;
      /** Leaf certificate and chain (PEM). */
      cert: string;
      /** Private key (PEM). */
      key: string;
      /** Trusted roots (PEM). */
      bundle: string;
    }
  | { kind: 'sds'; socket: string };

/** A workload's route to a data service (Cassandra, Kafka). */
export interface DataEgress {
  /**
   * The workload's own sidecar listener the app connects to in plaintext; the sidecar originates
   * mTLS to `upstream`. Absent where the mesh intercepts the app's own connection (Istio).
   */
  listen?: Endpoint;
  /** Where the data service is reached with the workload's SVID. */
  upstream: Endpoint;
  /** The SPIFFE ID the data service's servers present. */
  serverSpiffeId: string;
}

/** A workload's route to a peer workload it calls. */
export interface PeerEgress {
  /** The peer's model port this call reaches (see `peerPort`). */
  port: string;
  /** The peer's inbound endpoint for that port. */
  upstream: Endpoint;
  /** The caller's sidecar listener for its app, if the environment gives it one. */
  listen?: Endpoint;
}

/** Where one workload is reached and what it reaches, in one environment. */
export interface WorkloadBinding {
  /** The workload's SPIFFE ID as bound (the edge's identity may be the environment's). */
  spiffeId: string;
  edge: boolean;
  /** The sidecar's inbound listener per model port name: what callers dial. */
  inbound: Record<string, Endpoint>;
  /** Where the app listens, per model port name (empty where there is no app, e.g. an edge). */
  app: Record<string, Endpoint>;
  /** The sidecar's admin interface, if the environment has one of its own. */
  admin?: Endpoint;
  /**
   * The sidecar's metrics listener (mTLS, the metrics scraper only; ADR 0020), where the model has a
   * scraper and the environment runs our sidecar.
   */
  metrics?: Endpoint;
  /**
   * The sidecar's telemetry egress listener (ADR 0023: plaintext on the pod's loopback, the app's
   * OTLP/HTTP `POST /v1/traces` to the collector over mTLS), where the model declares tracing and
   * the environment runs our sidecar and an app.
   */
  telemetryEgress?: Endpoint;
  /** One route per data service the workload calls. */
  egress: Partial<Record<DataService, DataEgress>>;
  /** One route per peer workload the workload calls. */
  peers: Record<string, PeerEgress>;
  svid: SvidLocation;
  /** The sidecar's own directory (bootstrap, SDS files), where the environment runs our Envoy. */
  proxyDir?: string;
  /**
   * Where this workload reaches the environment's own servers that listen on loopback (a local
   * pod: the host's end of its pod link). Absent where they are reached as bound.
   */
  hostAddress?: string;
}

/** An identity provider as deployed in the environment. */
export interface IdentityProviderBinding {
  issuer: string;
  jwksUri: string;
  /** Where the sidecars fetch the JWKS from, when it is not the jwksUri's own host and port. */
  jwks?: Endpoint & { tls?: boolean; caFile?: string };
  /**
   * Set when the environment runs this provider as a Keycloak realm itself. `podAddress`: where
   * that Keycloak listens when it runs in a pod (local `pods.servers.keycloak`); pod workloads'
   * sidecars fetch the JWKS there.
   */
  keycloak?: { baseUrl: string; realm: string; podAddress?: string };
}

/** Who the edge is in this environment (locally the model's edge workload; NGF in a cluster). */
export interface EdgeBinding {
  workload: string;
  namespace: string;
  serviceAccount: string;
  spiffeId: string;
  /**
   * Where the environment's public TLS listener in front of the edge binds: locally nginx, on the
   * edge pod's address when the edge is a pod (host clients reach it through a relay on
   * 127.0.0.1 at the same port), else on 127.0.0.1. Absent where the environment's own gateway
   * serves it (a cluster).
   */
  listen?: Endpoint;
}

/** Where an environment runs the trace pipeline itself (ADR 0023). */
export interface TracingPlacement {
  collector: {
    svid: SvidLocation;
    /** The collector's mTLS front: what every sidecar dials (a local pod: at its `hostAddress`). */
    front: Endpoint;
    /** The collector's OTLP/HTTP receiver (TLS), on loopback: only the front dials it. */
    receiver: Endpoint;
    /** The front's Envoy admin, on loopback. */
    admin: Endpoint;
  };
  jaeger: {
    /** Jaeger's service account, for its SPIFFE ID (in the collector's namespace). */
    serviceAccount: string;
    svid: SvidLocation;
    /** Jaeger's OTLP/gRPC receiver (mTLS), on loopback: only the collector dials it. */
    otlp: Endpoint;
    /** The query API (`/api/traces/<id>`, `/api/v3/traces/<id>`), on the host's loopback. */
    query: Endpoint;
    /** The query gRPC API, on the host's loopback. */
    queryGrpc: Endpoint;
  };
}

/** The trace collector's identity and, where the environment runs the pipeline, where it is. */
export interface TracingBinding {
  spiffeId: string;
  /** Sampling rate of the spans the sidecars start (the model's `tracing.sampling`). */
  sampling: number;
  collector?: TracingPlacement['collector'];
  jaeger?: TracingPlacement['jaeger'] & { spiffeId: string };
}

/** Everything an environment decided for one model. */
export interface Binding {
  environment: Environment['kind'];
  identityProviders: Record<string, IdentityProviderBinding>;
  /** The public hosts of each route. */
  routes: Record<string, { hosts: string[] }>;
  edge?: EdgeBinding;
  workloads: Record<string, WorkloadBinding>;
  /**
   * The metrics scraper (the model's `metrics.scraper`): its SPIFFE ID and, where the environment
   * runs it, its SVID files and its own (plaintext, loopback) listener.
   */
  metrics?: { spiffeId: string; svid?: SvidLocation; listen?: Endpoint };
  /** The trace pipeline (the model's `tracing`; ADR 0023). */
  tracing?: TracingBinding;
  /** Each data service's own endpoint (direct clients holding SVID files) and identity. */
  dataServices: Partial<Record<DataService, { endpoint: Endpoint; spiffeId: string }>>;
}

/**
 * A model bound to one environment: the model as deployed there (validated again after every
 * change) plus its {@link Binding}. Compilers take it where they take a `ValidModel`.
 */
export type BoundModel = ValidModel & { readonly binding: Binding };

/** The outcome of `bind`: a bound model, or path-qualified errors (never an exception). */
export type BindResult =
  | { ok: true; model: BoundModel; errors: [] }
  | { ok: false; model?: undefined; errors: PolicyError[] };

/** A change to one budget for one run (`--budget-override`): a route's, or the mesh's. */
export interface BudgetOverride {
  /** A route name, or `mesh`. */
  target: string;
  p50Ms?: number;
  p99Ms?: number;
  rps?: number;
  maxErrorRate?: number;
}

/** What every environment may add: budget overrides for this run. */
interface EnvironmentCommon {
  /** Applied in order, then validated with the model. @default none */
  budgets?: readonly BudgetOverride[];
}

/** One machine: every listener on 127.0.0.1, ports from `basePort` (see `localPortOffsets`). */
export interface LocalEnvironment extends EnvironmentCommon {
  kind: 'local';
  /** The stack's first port: `local` 8000, `e2e` 28000. */
  basePort: number;
  /** `<repo>/.trellis/<stack>`: where the stack writes its SVIDs and process directories. */
  stackDir: string;
  /**
   * The stack's Keycloak, e.g. `{ baseUrl: 'http://localhost:8180' }` (scheme included). The model's
   * provider served by it (issuer `http(s)://localhost:<port>/realms/<realm>`) moves there.
   * @default no Keycloak: every issuer stays as written
   */
  keycloak?: { baseUrl: string; caFile?: string };
  /**
   * Workloads that run as pods (ADR 0012): each one's address on the stack's pod bridge, and the
   * host's end of the pod link. A pod's inbound listener binds its pod address; its app, egress
   * listeners and admin bind 127.0.0.1 inside the pod; its sidecar reaches the stack's own servers
   * (Cassandra, Kafka, Keycloak) at their own pods' addresses (`servers`), or else at `hostAddress`.
   * The edge's pod is the ingress gateway's: nginx's TLS listener binds the pod address, and the edge
   * sidecar's inbound (plaintext, from nginx) the pod's own 127.0.0.1.
   * @default none: every listener on the host's 127.0.0.1
   */
  pods?: LocalPods;
}

/** Where a local stack's pods are: see {@link LocalEnvironment.pods}. */
export interface LocalPods {
  /** The host's end of the pod link (`198.18.8.1` for `local`). */
  hostAddress: string;
  /** Workload name → its pod's address. */
  addresses: Record<string, string>;
  /**
   * The stack's servers that run as pods of their own: each one's pod address. A pod workload's
   * sidecar dials a server that has one there (its client listener binds it) instead of at
   * `hostAddress`; workloads on the host keep 127.0.0.1, which the host relays to the server pod.
   * @default none: every server on the host
   */
  servers?: { cassandra?: string; kafka?: string; keycloak?: string };
}

/** One Kubernetes cluster with Istio and NGINX Gateway Fabric. */
export interface KubernetesEnvironment extends EnvironmentCommon {
  kind: 'kubernetes';
  /** Issuer and JWKS of each identity provider as deployed here; every route's provider needs one. */
  issuers: Record<string, { issuer: string; jwksUri: string }>;
  /** Model route host → this environment's host. */
  hosts: Record<string, string>;
  /** The edge's identity and Service: NGF's data plane for the Gateway. */
  gateway: { namespace: string; serviceAccount: string; port: number };
  /** Where each data service is reached (Service DNS name and port). @default none */
  dataServices?: Partial<Record<DataService, Endpoint>>;
  /** @default 'cluster.local' */
  clusterDomain?: string;
}

/**
 * The documented example plan on loopback that `policy render` uses: sidecar inbound on model port
 * + 10000, app on the model port, admin on 9901 + index, egress listeners from 15001.
 */
export interface ExampleEnvironment extends EnvironmentCommon {
  kind: 'example';
  /** The directory the rendered files are written to. @default '/etc/trellis' */
  baseDir?: string;
}

/** Where a model is deployed. */
export type Environment = LocalEnvironment | KubernetesEnvironment | ExampleEnvironment;
