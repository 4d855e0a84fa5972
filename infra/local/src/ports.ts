/**
 * Every loopback port of a local stack: `basePort` plus a fixed offset, so that URLs are stable
 * (`local`: ingress 8443, Keycloak 8180) and a second stack on another base can run beside it.
 */
export const portOffsets = {
  ingressHttps: 443,
  keycloakHttp: 180,
  keycloakManagement: 190,
  cassandraNative: 42,
  cassandraStorage: 70,
  /** Cassandra's JMX, bound to loopback (nodetool); it must be fixed or two stacks would both take 7199. */
  cassandraJmx: 71,
  kafkaController: 93,
  kafkaInterBroker: 94,
  /** One Kafka client listener per client workload starts here (see the data module). */
  kafkaClientsFrom: 300,
  envoyAdminFrom: 500,
  sidecarInboundFrom: 600,
  sidecarOutboundFrom: 700,
  appFrom: 800,
} as const;

export type PortName = keyof typeof portOffsets;

/** The ports of a stack at `base`. */
export function portsAt(base: number): Record<PortName, number> {
  const out = {} as Record<PortName, number>;
  for (const [k, off] of Object.entries(portOffsets)) out[k as PortName] = base + off;
  return out;
}

/**
 * Ports per workload, agreed between the data and mesh modules. A workload's index is its position
 * among the model's workload names, sorted, so that ports do not depend on YAML order.
 */
export function workloadIndex(workloads: readonly string[], workload: string): number {
  const i = [...workloads].sort().indexOf(workload);
  if (i < 0) throw new Error(`ports: unknown workload '${workload}'`);
  return i;
}

/** Each workload's sidecar owns this many egress ports from `sidecarOutboundFrom`. */
export const sidecarEgressBlock = 10;

/** Egress slots inside a workload's block: the data services first, then its peers in `calls` order. */
export const egressSlots = { cassandra: 0, kafka: 1, peersFrom: 2 } as const;

/**
 * The plaintext loopback port on which `index`'s sidecar accepts its app's connections for `slot`
 * (and originates mTLS with the workload SVID).
 */
export function sidecarEgressPort(
  ports: Record<PortName, number>,
  index: number,
  slot: number,
): number {
  if (!Number.isInteger(slot) || slot < 0 || slot >= sidecarEgressBlock)
    throw new Error(`ports: egress slot ${slot} is outside [0, ${sidecarEgressBlock - 1}]`);
  return blockPort(ports, 'sidecarOutboundFrom', index * sidecarEgressBlock + slot);
}

/**
 * Kafka's client listeners: `kafkaClientsFrom` is the direct mTLS listener (apps and tests holding
 * their SVID files), and `kafkaClientsFrom + 1 + index` the one that `index`'s sidecar dials, which
 * advertises that sidecar's Kafka egress port.
 */
export function kafkaDirectPort(ports: Record<PortName, number>): number {
  return ports.kafkaClientsFrom;
}

/** The Kafka listener dialled by workload `index`'s sidecar (see {@link kafkaDirectPort}). */
export function kafkaWorkloadListenerPort(ports: Record<PortName, number>, index: number): number {
  return blockPort(ports, 'kafkaClientsFrom', 1 + index);
}

/** `ports[from] + offset`, checked to stay below the next range's first port. */
function blockPort(ports: Record<PortName, number>, from: PortName, offset: number): number {
  if (!Number.isInteger(offset) || offset < 0) throw new Error(`ports: bad offset ${offset}`);
  const start = portOffsets[from];
  const next = Math.min(
    ...Object.values(portOffsets).filter((o) => o > start),
    Number.POSITIVE_INFINITY,
  );
  if (start + offset >= next)
    throw new Error(
      `ports: ${from} + ${offset} runs into the next range (${next - start} ports from ${from})`,
    );
  return ports[from] + offset;
}
