/**
 * The services' client certificates for the data stores on Kubernetes. Cassandra requires a client
 * certificate (client_encryption_options.require_client_auth) and maps its SPIFFE URI SAN to a role
 * (`ADD IDENTITY`, compileCassandra); Kafka's TLS listener authenticates clients by certificate and
 * takes the principal from its subject (`User:CN=<KafkaUser>`, strimziPrincipal). Istio's mTLS ends at
 * the data store's sidecar, so it authenticates neither: the app itself must present a certificate.
 *
 * One cert-manager Certificate per workload, from the cluster's data intermediate (the CA Cassandra's
 * truststore holds and Kafka's clients CA is), carries both names. It is mounted read-only at
 * {@link dataTls}`.mountPath`, where the services read it for each new connection (TlsMaterial), so a
 * renewal reaches new connections without a restart. Why not the mesh CA: its certificates are Istio's
 * SVIDs, held by the sidecar and never by the app, and neither data store trusts it.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';
import { svidFiles, systemNamespaces } from '@trellis/contracts';

/** A cert-manager issuer, as a Certificate's `issuerRef` names it. */
export interface IssuerRef {
  kind: 'ClusterIssuer' | 'Issuer';
  name: string;
}

/** Where the client certificate is mounted in a service's container, and its files (PEM). */
export const dataTls = {
  mountPath: '/var/run/trellis/data-tls',
  files: {
    /** The trust bundle the data stores' server certificates chain to. */
    ca: svidFiles.bundle,
    /** The client certificate, then its intermediate. */
    cert: svidFiles.cert,
    /** Its private key. */
    key: svidFiles.key,
  },
} as const;

/** Absolute path of one of the {@link dataTls} files. */
export function dataTlsPath(file: keyof typeof dataTls.files): string {
  return `${dataTls.mountPath}/${dataTls.files[file]}`;
}

/** Arguments of {@link DataCaIssuer}. */
export interface DataCaIssuerArgs {
  /** The data intermediate's certificate followed by the root (IntermediateCa.chainPem). */
  chainPem: pulumi.Input<string>;
  /** The data intermediate's private key (secret). */
  keyPem: pulumi.Input<string>;
  /** cert-manager's namespace: a ClusterIssuer reads its CA Secret there. @default "cert-manager" */
  namespace?: string;
  /** @default "trellis-data-ca" */
  issuerName?: string;
  /** cert-manager's release (the ClusterIssuer CRD). */
  dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/**
 * A cert-manager ClusterIssuer backed by the data intermediate, so that services in any namespace can
 * get a client certificate while the CA key stays in cert-manager's namespace. The Secret's `tls.crt`
 * is the chain up to the root: the issued `tls.crt` then carries the intermediate, which Kafka's and
 * Cassandra's truststores anchor on (cert-manager docs, CA issuer: "the chain").
 */
export class DataCaIssuer extends pulumi.ComponentResource {
  /** The issuer, for a Certificate's `issuerRef`. */
  public readonly ref: IssuerRef;
  /** The ClusterIssuer, for dependsOn. */
  public readonly issuer: k8s.apiextensions.CustomResource;

  constructor(name: string, args: DataCaIssuerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('trellis:k8s:DataCaIssuer', name, {}, opts);
    const issuerName = args.issuerName ?? 'trellis-data-ca';
    if (!/^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/.test(issuerName)) {
      throw new pulumi.ResourceError(
        `DataCaIssuer ${name}: issuerName must be a DNS name, got "${issuerName}"`,
        this,
      );
    }
    const secret = new k8s.core.v1.Secret(
      `${name}-ca`,
      {
        metadata: {
          name: issuerName,
          namespace: args.namespace ?? systemNamespaces.certManager,
        },
        type: 'kubernetes.io/tls',
        stringData: pulumi.secret(
          pulumi.all([args.chainPem, args.keyPem]).apply(([crt, key]) => ({
            'tls.crt': crt,
            'tls.key': key,
          })),
        ),
      },
      { parent: this, dependsOn: args.dependsOn ?? [] },
    );
    this.issuer = new k8s.apiextensions.CustomResource(
      `${name}-issuer`,
      {
        apiVersion: 'cert-manager.io/v1',
        kind: 'ClusterIssuer',
        metadata: { name: issuerName },
        spec: { ca: { secretName: secret.metadata.name } },
      },
      { parent: this, dependsOn: [secret, ...(args.dependsOn ?? [])] },
    );
    this.ref = { kind: 'ClusterIssuer', name: issuerName };
    this.registerOutputs({});
  }
}
