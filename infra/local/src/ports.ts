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
