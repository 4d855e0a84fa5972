/**
 * The data layer of the local stack: Cassandra 5 and Kafka 4 as Pulumi resources, wired from the
 * model, with one platform-admin identity that applies grants and ACLs. What the mesh and service
 * modules need comes back as a {@link DataLayer}.
 */
import * as pulumi from '@pulumi/pulumi';
import { LocalCassandra, type ServerPod } from '@trellis/components/local/cassandra';
import { LocalKafka, type KafkaWorkloadListener } from '@trellis/components/local/kafka';
import { WorkloadCertificate } from '@trellis/components/local/pki';
import { podAddress } from '@trellis/local/pods';
import type { LocalDataMetricsFront } from '@trellis/components/local/data-metrics';
import {
  callersOf,
  type BoundModel,
  type DataService,
  type EnvoyEndpoint,
  type ValidModel,
} from '@trellis/policy';
import type { StackContext } from './context.ts';
import { deployDataMetrics, planDataMetrics, type DataMetricsPlan } from './data-metrics.ts';

/** The identity Pulumi uses to apply CQL grants and Kafka ACLs (a superuser of both). */
export const PLATFORM_ADMIN = 'platform-admin';

/** The SPIFFE ID of platform-admin: `spiffe://<trust-domain>/ns/<namespace>/sa/platform-admin`. */
export function platformAdminSpiffeId(model: ValidModel): string {
  return `spiffe://${model.trustDomain}/ns/${model.namespace}/sa/${PLATFORM_ADMIN}`;
}

/**
 * One sidecar egress route to a data service: the app connects in plaintext to `listenPort` on
 * loopback; the sidecar originates mTLS with the workload's SVID to `upstream` and checks that the
 * server presents `serverSpiffeId`.
 */
export interface DataEgress {
  workload: string;
  service: DataService;
  /** The sidecar's plaintext loopback listener (127.0.0.1). */
  listenPort: number;
  upstream: { host: string; port: number };
  serverSpiffeId: string;
}

/** What the data layer gives the mesh and service modules. */
export interface DataLayer {
  /** The trust bundle (Mesh CA root) that signs both servers' certificates. */
  caFile: pulumi.Output<string>;
  cassandra: {
    host: string;
    /** CQL over mTLS (client certificate required), for direct clients and sidecars alike. */
    port: number;
    spiffeId: string;
    localDataCenter: string;
  };
  kafka: {
    /** The direct mTLS listener, advertised as itself (apps or tests holding SVID files). */
    bootstrap: string;
    spiffeId: string;
    /** The per-workload listeners, each advertised as that workload's sidecar Kafka egress. */
    workloadListeners: KafkaWorkloadListener[];
  };
  /** Every sidecar egress route to Cassandra and Kafka, one per (calling workload, service). */
  egress: DataEgress[];
  /**
   * platform-admin: Cassandra's only superuser and a Kafka super user (e.g. to create tables for the
   * services, so that they do not own them). Its files are `cert` (chain), `key`, `bundle`, `keystore`.
   */
  admin: { spiffeId: string; certificate: WorkloadCertificate };
  /** Depend on these to start after the data layer is up, with its grants and ACLs applied. */
  resources: pulumi.Resource[];
  /**
   * The nodes' metrics fronts (ADR 0020), when the model has a metrics scraper: what Prometheus
   * scrapes (`jmx-cassandra`, `jmx-kafka`), where each front and agent is, and the fronts.
   */
  metrics: {
    plan: DataMetricsPlan[];
    targets: Partial<Record<DataService, EnvoyEndpoint>>;
    fronts: LocalDataMetricsFront[];
  };
}

/**
 * The data layer's view of the binding (pure): one egress route per (calling workload, data
 * service), Cassandra's callers first, each sorted; and per Kafka caller the broker listener its
 * sidecar dials, advertised as that sidecar's Kafka egress (so clients come back through it).
 */
export function planDataPorts(model: BoundModel): {
  egress: DataEgress[];
  kafkaListeners: KafkaWorkloadListener[];
} {
  const egress: DataEgress[] = [];
  const kafkaListeners: KafkaWorkloadListener[] = [];
  for (const service of ['cassandra', 'kafka'] as const)
    for (const workload of callersOf(model, service)) {
      const e = model.binding.workloads[workload]?.egress[service];
      if (!e?.listen)
        throw new Error(`workloads.${workload}: the binding has no ${service} egress listener`);
      egress.push({
        workload,
        service,
        listenPort: e.listen.port,
        upstream: { host: e.upstream.address, port: e.upstream.port },
        serverSpiffeId: e.serverSpiffeId,
      });
      if (service === 'kafka')
        kafkaListeners.push({
          workload,
          port: e.upstream.port,
          advertised: `${e.listen.address}:${e.listen.port}`,
        });
    }
  return { egress, kafkaListeners };
}

/**
 * A server's pod, when the stack runs its servers as pods (ADR 0012): its launch, once the pods
 * exist, and its address on the pod bridge.
 */
function serverPod(ctx: StackContext, name: 'cassandra' | 'kafka'): ServerPod | undefined {
  const pods = ctx.pods;
  const slot = pods?.slots[name];
  if (pods === undefined || slot === undefined) return undefined;
  return {
    address: podAddress(pods.subnet, slot),
    launch: pods.resource.members.apply((m) => {
      const p = m[name];
      if (p === undefined) throw new Error(`pods: ${name} was not created`);
      return p.launch;
    }),
  };
}

/**
 * Cassandra and Kafka for the stack, with the model's grants, topics and ACLs; each in a pod of
 * its own when the stack has server pods (`ctx.pods`).
 */
export function deployData(ctx: StackContext, opts?: pulumi.ComponentResourceOptions): DataLayer {
  const plan = planDataPorts(ctx.model);
  const cassandraPod = serverPod(ctx, 'cassandra');
  const kafkaPod = serverPod(ctx, 'kafka');
  // A workload on the host dials its Kafka listener at 127.0.0.1: the host relays it to the pod.
  const kafkaListeners = plan.kafkaListeners.map((l) => {
    const e = plan.egress.find((x) => x.service === 'kafka' && x.workload === l.workload);
    return kafkaPod !== undefined && e?.upstream.host === '127.0.0.1'
      ? { ...l, fromHost: true }
      : l;
  });
  const admin = new WorkloadCertificate(
    PLATFORM_ADMIN,
    {
      ca: ctx.ca,
      spiffeId: platformAdminSpiffeId(ctx.model),
      dir: ctx.pkiDir(PLATFORM_ADMIN),
      validHours: ctx.certValidHours,
      rotation: ctx.rotation,
    },
    { parent: opts?.parent, dependsOn: [ctx.ca] },
  );
  const adminIdentity = { spiffeId: platformAdminSpiffeId(ctx.model), certificate: admin };
  // Each node's JMX exporter agent and its metrics front, when the model has a scraper.
  const metricsPlan = planDataMetrics(ctx.model, ctx.ports, {
    ...(cassandraPod !== undefined ? { cassandra: cassandraPod.address } : {}),
    ...(kafkaPod !== undefined ? { kafka: kafkaPod.address } : {}),
  });
  const exporter = (service: DataService) => {
    const p = metricsPlan.find((x) => x.service === service);
    return p !== undefined ? { jmxExporter: { port: p.exporterPort } } : {};
  };

  const cassandra = new LocalCassandra(
    'cassandra',
    {
      model: ctx.model,
      ca: ctx.ca,
      dir: ctx.runDir('cassandra'),
      certDir: ctx.pkiDir('cassandra'),
      admin: adminIdentity,
      ports: {
        native: ctx.ports.cassandraNative,
        storage: ctx.ports.cassandraStorage,
        jmx: ctx.ports.cassandraJmx,
      },
      certValidHours: ctx.certValidHours,
      rotation: ctx.rotation,
      ...(cassandraPod !== undefined ? { pod: cassandraPod } : {}),
      ...exporter('cassandra'),
    },
    opts,
  );

  const kafka = new LocalKafka(
    'kafka',
    {
      model: ctx.model,
      ca: ctx.ca,
      dir: ctx.runDir('kafka'),
      certDir: ctx.pkiDir('kafka'),
      admin: adminIdentity,
      ports: {
        // The direct mTLS listener (apps and tests holding SVID files); the per-workload ones follow.
        direct: ctx.ports.kafkaClientsFrom,
        broker: ctx.ports.kafkaInterBroker,
        controller: ctx.ports.kafkaController,
      },
      workloadListeners: kafkaListeners,
      certValidHours: ctx.certValidHours,
      rotation: ctx.rotation,
      ...(kafkaPod !== undefined ? { pod: kafkaPod } : {}),
      ...exporter('kafka'),
    },
    opts,
  );
  const metrics = deployDataMetrics(
    ctx,
    metricsPlan,
    {
      ...(cassandraPod !== undefined ? { cassandra: cassandraPod } : {}),
      ...(kafkaPod !== undefined ? { kafka: kafkaPod } : {}),
    },
    opts,
  );

  return {
    caFile: ctx.ca.bundleFile,
    cassandra: {
      host: cassandra.host,
      port: cassandra.port,
      spiffeId: cassandra.spiffeId,
      localDataCenter: cassandra.localDataCenter,
    },
    kafka: {
      bootstrap: kafka.bootstrap,
      spiffeId: kafka.spiffeId,
      workloadListeners: kafka.workloadListeners,
    },
    egress: plan.egress,
    admin: adminIdentity,
    resources: [cassandra, kafka],
    metrics: { plan: metricsPlan, ...metrics },
  };
}
