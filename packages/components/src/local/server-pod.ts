import * as pulumi from '@pulumi/pulumi';
import { isIPv4 } from 'node:net';
import { join } from 'node:path';
import type { PodLaunch } from '@trellis/local/pods';
import { POD_WORK_DIR } from './process-impl.ts';

/** Where a server of the stack runs as a pod: its launch and its address on the pod bridge. */
export interface ServerPod {
  launch: pulumi.Input<PodLaunch>;
  address: string;
}

/** Where a server's files go and whose they are, on the host or in its pod. */
export interface ServerPlacement {
  /** `<dir>/pod` in a pod (the pod user's own; the process dir stays root's), else `dir`. */
  home: string;
  /** The pod user's ids, for the files the server's resources write; none on the host. */
  owner?: pulumi.Output<{ uid: number; gid: number }>;
}

/**
 * The placement of a server (Cassandra, Kafka, Keycloak) of `dir`, in `pod` if given (ADR 0012):
 * one check of the pod's address and one rule for where its files live and who owns them, so the
 * server components do not each repeat them. Throws naming `pod.address` when it is not an IPv4
 * address off loopback.
 */
export function serverPlacement(
  name: string,
  dir: string,
  pod: ServerPod | undefined,
  parent: pulumi.Resource,
): ServerPlacement {
  if (pod === undefined) return { home: dir };
  if (!isIPv4(pod.address) || pod.address.startsWith('127.'))
    throw new pulumi.ResourceError(
      `${name}: pod.address must be an IPv4 address off loopback, got '${pod.address}'`,
      parent,
    );
  return {
    home: join(dir, POD_WORK_DIR),
    owner: pulumi.output(pod.launch).apply((l) => ({ uid: l.uid, gid: l.gid })),
  };
}

/**
 * Throws naming `jmxExporter.port` when it is not a TCP port or is one of the node's own `taken`
 * ports (LocalCassandra's and LocalKafka's `jmxExporter`).
 */
export function checkExporterPort(
  name: string,
  exporter: { port: number } | undefined,
  taken: readonly number[],
  parent: pulumi.Resource,
): void {
  if (exporter === undefined) return;
  const p = exporter.port;
  if (!Number.isInteger(p) || p < 1 || p > 65_535)
    throw new pulumi.ResourceError(
      `${name}: jmxExporter.port must be a TCP port, got ${p}`,
      parent,
    );
  if (taken.includes(p))
    throw new pulumi.ResourceError(
      `${name}: jmxExporter.port ${p} is one of the node's own ports`,
      parent,
    );
}
