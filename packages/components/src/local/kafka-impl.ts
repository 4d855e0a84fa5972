/**
 * The bodies of the local Kafka dynamic providers (storage format, readiness probe, topics, ACLs).
 * Imported by absolute path inside Pulumi's dynamic-provider host (see process.ts for why).
 */
import kafkajs from 'kafkajs';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  formatKafkaStorage,
  kafkaClientConfig,
  probeKafka,
  reloadKafkaCertificates,
} from '@trellis/local/harness';
import type { KafkaAclBinding } from '@trellis/policy';

const { Kafka, AclOperationTypes, AclPermissionTypes, AclResourceTypes, ResourcePatternTypes } =
  kafkajs;

/** How platform-admin reaches the broker: its direct TLS listener and PEM file paths. */
export interface AdminConnection {
  /** `host:port` of the direct client listener. */
  bootstrap: string;
  cert: string;
  key: string;
  ca: string;
}

/** Inputs of the storage format: the node's dir, its server.properties text and classpath. */
export interface StorageInputs {
  dir: string;
  properties: string;
  classpath: string;
  /** The pod user the broker runs as: the formatted dir becomes its. */
  owner?: { uid: number; gid: number };
}

/** Storage outputs. */
export interface StorageOutputs {
  dir: string;
  clusterId: string;
  /** Milliseconds the format took (0 when the storage was already formatted). */
  formatMs: number;
}

/** Format the node's storage once (a no-op, resolving the cluster id, when already formatted). */
export async function format(i: StorageInputs): Promise<StorageOutputs> {
  const r = await formatKafkaStorage(i);
  return { dir: i.dir, clusterId: r.clusterId, formatMs: r.formatMs };
}

/** Refresh of the storage: gone when its data dir lost `meta.properties`. */
export function storageExists(o: StorageOutputs): boolean {
  return existsSync(join(o.dir, 'data', 'meta.properties'));
}

function server(bootstrap: string) {
  return { bootstrap, tls: true, host: bootstrap.split(':')[0] ?? '127.0.0.1' };
}

function creds(c: AdminConnection) {
  return { cert: c.cert, key: c.key, ca: c.ca };
}

/** Readiness probe of the broker (LocalProcess `module` probe): metadata as platform-admin. */
export async function probe(c: AdminConnection): Promise<boolean> {
  await probeKafka(server(c.bootstrap), creds(c));
  return true;
}

/** Inputs of the certificate reload: the broker's keystore, its listeners, and what triggers it. */
export interface CertReloadInputs {
  admin: AdminConnection;
  /** The broker's PEM keystore path (`ssl.keystore.location`). */
  keystore: string;
  /** Every listener of the broker (CLIENT, BROKER, CONTROLLER and the workloads'). */
  listeners: string[];
  /** The certificate (PEM): a new one means new files for the broker to take. */
  trigger: string;
}

/** Certificate reload outputs: what the direct listener presents afterwards. */
export interface CertReloadOutputs extends CertReloadInputs {
  serial: string;
  /** Milliseconds until the direct listener presented it. */
  ms: number;
}

/**
 * Make the running broker take its renewed key material without a restart (ADR 0029), as
 * platform-admin, and check that the direct listener presents it.
 */
export async function reloadCerts(i: CertReloadInputs): Promise<CertReloadOutputs> {
  const s = server(i.admin.bootstrap);
  const port = Number(i.admin.bootstrap.split(':')[1]);
  const r = await reloadKafkaCertificates(
    { ...s, port },
    {
      client: creds(i.admin),
      keystore: i.keystore,
      listeners: i.listeners,
      verify: [{ name: 'CLIENT', host: s.host, port }],
    },
  );
  return { ...i, serial: r.expected.serial, ms: r.ms };
}

async function withAdmin<T>(
  c: AdminConnection,
  fn: (admin: kafkajs.Admin) => Promise<T>,
): Promise<T> {
  const cfg = kafkaClientConfig(server(c.bootstrap), creds(c), 'trellis-platform-admin');
  const admin = new Kafka({ ...cfg, retry: { retries: 3 } }).admin();
  await admin.connect();
  try {
    return await fn(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** One topic from the model. */
export interface TopicSpec {
  name: string;
  partitions: number;
}

/** Inputs of the topics resource. */
export interface TopicsInputs {
  admin: AdminConnection;
  topics: TopicSpec[];
}

/** Topics outputs: the topics that exist. */
export type TopicsOutputs = TopicsInputs;

/** The diff key of a topic list. */
export function topicsKey(topics: readonly TopicSpec[]): string {
  return JSON.stringify([...topics].sort((a, b) => a.name.localeCompare(b.name)));
}

/**
 * Create the topics that do not exist yet. Topics that left the model are kept with their records
 * (their ACLs are gone, so no workload can use them); delete one by hand if it must go.
 */
export async function ensureTopics(i: TopicsInputs): Promise<TopicsOutputs> {
  await withAdmin(i.admin, async (admin) => {
    const have = new Set(await admin.listTopics());
    const missing = i.topics.filter((t) => !have.has(t.name));
    if (missing.length === 0) return;
    // kafkajs' own `waitForLeaders` retries LEADER_NOT_AVAILABLE only; just after a create the broker
    // may still answer UNKNOWN_TOPIC_OR_PARTITION ("This server does not host this topic-partition"),
    // which failed an e2e `up` on 2026-12-07. The leaders are awaited here instead, tolerating both.
    await admin.createTopics({
      topics: missing.map((t) => ({ topic: t.name, numPartitions: t.partitions })),
      waitForLeaders: false,
    });
    await waitForLeaders(admin, missing, TOPIC_LEADERS_TIMEOUT_MS);
  });
  return i;
}

/** How long a created topic's partitions may go without a leader before `up` fails. */
export const TOPIC_LEADERS_TIMEOUT_MS = 30_000;

type LeaderAdmin = Pick<kafkajs.Admin, 'fetchTopicMetadata'>;

/**
 * Wait until every partition of `topics` has a leader. Metadata errors while the topics settle
 * (unknown topic or partition, no leader yet) are retried; past `timeoutMs` the error names the
 * topics still without one and the last error seen.
 */
export async function waitForLeaders(
  admin: LeaderAdmin,
  topics: readonly TopicSpec[],
  timeoutMs: number,
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pending = topics.map((t) => t.name);
  for (;;) {
    let lastError = 'no leader yet';
    try {
      const md = await admin.fetchTopicMetadata({ topics: pending });
      const led = new Set(
        md.topics
          .filter((t) => {
            const want = topics.find((x) => x.name === t.name)?.partitions ?? 1;
            return t.partitions.length >= want && t.partitions.every((p) => p.leader >= 0);
          })
          .map((t) => t.name),
      );
      pending = pending.filter((n) => !led.has(n));
      if (pending.length === 0) return;
    } catch (err) {
      lastError = (err as Error).message;
    }
    if (Date.now() >= deadline)
      throw new Error(
        `topics ${pending.join(', ')}: no leader for every partition within ${timeoutMs} ms (last: ${lastError})`,
      );
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Refresh of the topics: those of the recorded list that still exist. */
export async function observeTopics(o: TopicsOutputs): Promise<TopicsOutputs> {
  try {
    return await withAdmin(o.admin, async (admin) => {
      const have = new Set(await admin.listTopics());
      return { ...o, topics: o.topics.filter((t) => have.has(t.name)) };
    });
  } catch {
    return o;
  }
}

/** Inputs of the ACL resource: the compiled bindings, applied as platform-admin. */
export interface AclsInputs {
  admin: AdminConnection;
  acls: KafkaAclBinding[];
}

/** ACL outputs: the bindings in effect. */
export type AclsOutputs = AclsInputs;

const bindingKey = (b: KafkaAclBinding): string =>
  JSON.stringify([
    b.resourceType,
    b.resourceName,
    b.patternType,
    b.principal,
    b.host,
    b.operation,
    b.permissionType,
  ]);

/** A canonical, sorted, de-duplicated binding list: what `diff` compares. */
export function normalizeAcls(acls: readonly KafkaAclBinding[]): KafkaAclBinding[] {
  const byKey = new Map(acls.map((b) => [bindingKey(b), b]));
  return [...byKey.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, b]) => b);
}

/** The diff key of a binding list. */
export function aclsKey(acls: readonly KafkaAclBinding[]): string {
  return normalizeAcls(acls).map(bindingKey).join('\n');
}

/** What changes between two binding lists: bindings to delete and to create. */
export function planAcls(
  olds: readonly KafkaAclBinding[],
  news: readonly KafkaAclBinding[],
): { remove: KafkaAclBinding[]; add: KafkaAclBinding[] } {
  const o = new Map(olds.map((b) => [bindingKey(b), b]));
  const n = new Map(news.map((b) => [bindingKey(b), b]));
  return {
    remove: [...o].filter(([k]) => !n.has(k)).map(([, b]) => b),
    add: [...n].filter(([k]) => !o.has(k)).map(([, b]) => b),
  };
}

const enumValue = <T extends Record<string, unknown>>(e: T, name: string, what: string) => {
  const v = e[name];
  if (typeof v !== 'number') throw new Error(`kafka acls: unknown ${what} ${name}`);
  return v as T[keyof T];
};

/** A binding as kafkajs' AclEntry (also a delete filter that matches exactly it). */
export function toAclEntry(b: KafkaAclBinding): kafkajs.AclEntry {
  return {
    resourceType: enumValue(AclResourceTypes, b.resourceType, 'resource type'),
    resourceName: b.resourceName,
    resourcePatternType: enumValue(ResourcePatternTypes, b.patternType, 'pattern type'),
    principal: b.principal,
    host: b.host,
    operation: enumValue(AclOperationTypes, b.operation, 'operation'),
    permissionType: enumValue(AclPermissionTypes, b.permissionType, 'permission type'),
  };
}

const nameOf = (e: Record<string, unknown>, v: number): string => {
  const n = Object.entries(e).find(([, x]) => x === v)?.[0];
  if (!n) throw new Error(`kafka acls: unknown enum value ${v}`);
  return n;
};

/** Every ACL binding on the broker. */
export async function describeAll(c: AdminConnection): Promise<KafkaAclBinding[]> {
  return withAdmin(c, async (admin) => {
    const res = await admin.describeAcls({
      resourceType: AclResourceTypes.ANY,
      resourcePatternType: ResourcePatternTypes.ANY,
      operation: AclOperationTypes.ANY,
      permissionType: AclPermissionTypes.ANY,
    });
    const out: KafkaAclBinding[] = [];
    for (const r of res.resources)
      for (const a of r.acls)
        out.push({
          resourceType: nameOf(AclResourceTypes, r.resourceType) as KafkaAclBinding['resourceType'],
          resourceName: r.resourceName,
          patternType: nameOf(
            ResourcePatternTypes,
            r.resourcePatternType,
          ) as KafkaAclBinding['patternType'],
          principal: a.principal,
          host: a.host,
          operation: nameOf(AclOperationTypes, a.operation) as KafkaAclBinding['operation'],
          permissionType: nameOf(
            AclPermissionTypes,
            a.permissionType,
          ) as KafkaAclBinding['permissionType'],
        });
    return normalizeAcls(out);
  });
}

async function apply(c: AdminConnection, plan: ReturnType<typeof planAcls>): Promise<void> {
  await withAdmin(c, async (admin) => {
    if (plan.remove.length > 0) {
      const res = await admin.deleteAcls({ filters: plan.remove.map(toAclEntry) });
      const failed = res.filterResponses.find((f) => f.errorCode !== 0);
      if (failed)
        throw new Error(`kafka acls: delete failed: ${failed.errorMessage ?? failed.errorCode}`);
    }
    if (plan.add.length > 0) await admin.createAcls({ acl: plan.add.map(toAclEntry) });
  });
}

/** Create: the model's bindings (any others already on the broker are removed: the model rules). */
export async function createAcls(i: AclsInputs): Promise<AclsOutputs> {
  const live = await describeAll(i.admin);
  await apply(i.admin, planAcls(live, i.acls));
  return { ...i, acls: normalizeAcls(i.acls) };
}

/** Update: delete the bindings that left, create the new ones. */
export async function updateAcls(olds: AclsOutputs, news: AclsInputs): Promise<AclsOutputs> {
  await apply(news.admin, planAcls(olds.acls, news.acls));
  return { ...news, acls: normalizeAcls(news.acls) };
}

/**
 * Refresh: the bindings on the broker, so that one added or deleted by hand shows as a change and
 * the next `up` puts the model's set back. When the broker does not answer, the recorded state stands.
 */
export async function observeAcls(o: AclsOutputs): Promise<AclsOutputs> {
  try {
    return { ...o, acls: await describeAll(o.admin) };
  } catch {
    return o;
  }
}
