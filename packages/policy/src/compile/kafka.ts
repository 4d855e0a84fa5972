/**
 * Kafka ACL bindings for StandardAuthorizer (KRaft), with `allow.everyone.if.no.acl.found=false` on the
 * broker. Producers get WRITE on their topics; consumers get READ on their topics and on their groups.
 * DESCRIBE is implied by READ and WRITE, and since Kafka 3.0 (KIP-679) an idempotent producer needs WRITE
 * on a topic instead of IDEMPOTENT_WRITE on the cluster, so neither is granted separately.
 * https://kafka.apache.org/documentation/#security_authz and
 * https://kafka.apache.org/documentation/#operations_resources_and_protocols
 */
import type { KafkaOperation, KafkaResourceType } from '../request.ts';
import type { BoundModel } from '../bind/types.ts';

/** One ACL binding, as Kafka's Admin API (`AclBinding`) and `kafka-acls.sh` express it. */
export interface KafkaAclBinding {
  resourceType: KafkaResourceType;
  resourceName: string;
  patternType: 'LITERAL' | 'PREFIXED';
  principal: string;
  host: string;
  operation: KafkaOperation | 'ALL';
  permissionType: 'ALLOW' | 'DENY';
}

/** Options of `compileKafkaAcls`. */
export interface KafkaAclOptions {
  /**
   * The Kafka principal of a workload. @default `User:<workload>`, which is what the broker yields with
   * `ssl.principal.mapping.rules=RULE:^CN=([^,]+).*$/$1/,DEFAULT` and certificates whose CN is the
   * workload name (Strimzi: `User:CN=<name>`).
   */
  principal?: (workload: string) => string;
}

/** The broker setting the compiled ACLs assume (set it on every broker). */
export const kafkaPrincipalMappingRules = 'RULE:^CN=([^,]+).*$/$1/,DEFAULT';

/** Compiles the model's topics to ACL bindings, sorted and without duplicates. */
export function compileKafkaAcls(model: BoundModel, opts: KafkaAclOptions = {}): KafkaAclBinding[] {
  const principal = opts.principal ?? ((w: string) => `User:${w}`);
  const out = new Map<string, KafkaAclBinding>();
  const add = (b: KafkaAclBinding) => out.set(JSON.stringify(b), b);
  const pattern = (p: 'literal' | 'prefixed') => (p === 'literal' ? 'LITERAL' : 'PREFIXED');
  for (const [topic, t] of Object.entries(model.kafka.topics)) {
    for (const p of t.producers)
      add({
        resourceType: 'TOPIC',
        resourceName: topic,
        patternType: pattern(t.pattern),
        principal: principal(p),
        host: '*',
        operation: 'WRITE',
        permissionType: 'ALLOW',
      });
    for (const c of t.consumers) {
      add({
        resourceType: 'TOPIC',
        resourceName: topic,
        patternType: pattern(t.pattern),
        principal: principal(c.identity),
        host: '*',
        operation: 'READ',
        permissionType: 'ALLOW',
      });
      add({
        resourceType: 'GROUP',
        resourceName: c.group,
        patternType: pattern(c.groupPattern),
        principal: principal(c.identity),
        host: '*',
        operation: 'READ',
        permissionType: 'ALLOW',
      });
    }
  }
  return [...out.values()].sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
}

/** Arguments for `kafka-acls.sh --bootstrap-server ... --add` that create one binding. */
export function kafkaAclCliArgs(b: KafkaAclBinding): string[] {
  const camel = (op: string) =>
    op.toLowerCase().replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
  const resource =
    b.resourceType === 'TOPIC'
      ? ['--topic', b.resourceName]
      : b.resourceType === 'GROUP'
        ? ['--group', b.resourceName]
        : ['--cluster'];
  return [
    '--add',
    b.permissionType === 'ALLOW' ? '--allow-principal' : '--deny-principal',
    b.principal,
    b.permissionType === 'ALLOW' ? '--allow-host' : '--deny-host',
    b.host,
    '--operation',
    camel(b.operation),
    ...resource,
    '--resource-pattern-type',
    b.patternType.toLowerCase(),
  ];
}
