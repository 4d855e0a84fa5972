/**
 * The requests the oracle decides, and the token model shared by the oracle and the evaluators.
 * A request describes what a target system sees: the peer certificate, the HTTP method and path, the
 * bearer token, or the principal using a topic or a table.
 */
import type { CassandraPermission, HttpMethod } from './schema.ts';

/** The peer of a connection: no client certificate, or a certificate with a SPIFFE URI SAN. */
export type Peer =
  | { kind: 'none' }
  | {
      kind: 'cert';
      /** The URI SAN of the client certificate. */
      spiffeId: string;
      /** Whether the certificate chains to the mesh trust bundle (false: another CA). */
      trusted: boolean;
    };

/** A JSON value, as found in JWT claims. */
export type JsonValue =
  string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** A bearer token as the proxy sees it after decoding: its claims and whether its signature checks out. */
export interface Token {
  /** The JOSE `alg`; `none` is never accepted. */
  alg: string;
  /** Whether the signature verifies against the provider's JWKS. */
  signatureValid: boolean;
  /** The payload. */
  claims: { [claim: string]: JsonValue };
}

/** A request to a workload's inbound http or grpc port, as its sidecar sees it. */
export interface HttpRequest {
  kind: 'http';
  /** Destination workload. */
  to: string;
  /** Destination port name. */
  port: string;
  peer: Peer;
  method: HttpMethod | string;
  /** Path without the query string, already normalized. */
  path: string;
  token?: Token;
  /** Current time, in seconds since the epoch. */
  now: number;
}

/** A TCP connection to a workload's inbound tcp port. */
export interface TcpRequest {
  kind: 'tcp';
  to: string;
  port: string;
  peer: Peer;
}

/** A request from outside through the edge: a user or agent calling a route. */
export interface EdgeRequest {
  kind: 'edge';
  host: string;
  method: HttpMethod | string;
  path: string;
  token?: Token;
  now: number;
}

/** Kafka operations (a subset of Kafka's AclOperation). */
export const kafkaOperations = [
  'READ',
  'WRITE',
  'CREATE',
  'DELETE',
  'ALTER',
  'DESCRIBE',
  'CLUSTER_ACTION',
  'DESCRIBE_CONFIGS',
  'ALTER_CONFIGS',
  'IDEMPOTENT_WRITE',
] as const;
/** A Kafka operation. */
export type KafkaOperation = (typeof kafkaOperations)[number];
/** Kafka resource types the model governs. */
export type KafkaResourceType = 'TOPIC' | 'GROUP' | 'CLUSTER';

/** A Kafka client (identified by its workload) doing an operation on a resource. */
export interface KafkaRequest {
  kind: 'kafka';
  /** The workload whose certificate the client presented. */
  identity: string;
  operation: KafkaOperation;
  resource: { type: KafkaResourceType; name: string };
}

/** A CQL client doing something that needs `permission` on a keyspace (or a table in it). */
export interface CqlRequest {
  kind: 'cql';
  /** The SPIFFE ID in the client certificate. */
  identity: string;
  keyspace: string;
  /** Omit for keyspace-level operations (e.g. CREATE TABLE needs CREATE on the keyspace). */
  table?: string;
  permission: CassandraPermission;
}

/** A scrape of a workload's metrics: a request to its sidecar's metrics listener. */
export interface ScrapeRequest {
  kind: 'scrape';
  /**
   * The workload whose sidecar is scraped, or a server (`cassandra`, `kafka`, `keycloak`) whose
   * metrics front is.
   */
  to: string;
  peer: Peer;
  method: HttpMethod | string;
  /** Path without the query string, already normalized. */
  path: string;
}

/**
 * A span export to the trace collector (OTLP/HTTP): from a workload's sidecar (its own spans, or its
 * app's through the telemetry egress listener), presenting the workload's certificate.
 */
export interface TraceExportRequest {
  kind: 'trace-export';
  peer: Peer;
  method: HttpMethod | string;
  /** Path without the query string, already normalized. */
  path: string;
}

/** Anything the oracle can decide. */
export type AccessRequest =
  | HttpRequest
  | TcpRequest
  | EdgeRequest
  | KafkaRequest
  | CqlRequest
  | ScrapeRequest
  | TraceExportRequest;

/** The oracle's answer. */
export interface Decision {
  allowed: boolean;
  /** Why, in words (the first rule that decided). */
  reason: string;
}

/**
 * Clock skew allowed on `exp` and `nbf`: Envoy jwt_authn's default `clock_skew_seconds`, which Istio
 * inherits; the Envoy compiler sets it explicitly and the oracle applies the same tolerance.
 */
export const jwtClockSkewSeconds = 60;

/** Claims that Istio splits on spaces (1.21+); every other string claim is compared whole. */
export const spaceDelimitedClaims = ['scope', 'permission'] as const;

/** The value at a dotted claim path (`realm_access.roles`), or undefined. */
export function claimAt(
  claims: { [claim: string]: JsonValue },
  path: string,
): JsonValue | undefined {
  let cur: JsonValue | undefined = claims;
  for (const key of path.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/**
 * The string values a claim carries: the elements of a list claim, the space-separated parts of a
 * `scope`/`permission` string, or the whole string for any other claim. Non-strings carry none.
 */
export function claimValues(claims: { [claim: string]: JsonValue }, path: string): string[] {
  const v = claimAt(claims, path);
  if (typeof v === 'string')
    return (spaceDelimitedClaims as readonly string[]).includes(path)
      ? v.split(' ').filter((s) => s !== '')
      : [v];
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  return [];
}
