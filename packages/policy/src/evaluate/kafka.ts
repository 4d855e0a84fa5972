/**
 * An evaluator of Kafka ACL bindings, written from Kafka's documented authorizer semantics
 * (https://kafka.apache.org/documentation/#security_authz):
 * - an ACL applies to a request when its resource type matches and its pattern matches the resource
 *   name (LITERAL: equal, or the wildcard `*`; PREFIXED: the name starts with the pattern), its principal
 *   is the request's or `User:*`, and its host is the request's or `*`;
 * - DENY takes precedence: any applicable DENY ACL for the operation (or ALL) denies;
 * - otherwise an applicable ALLOW ACL for the operation, for ALL, or for an operation that implies it
 *   (READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS) allows;
 * - if no ACL applies to the resource at all, `allow.everyone.if.no.acl.found` decides (false here);
 * - super users (none in this model) bypass everything.
 */
import type { KafkaAclBinding } from '../compile/kafka.ts';
import type { Decision, KafkaOperation, KafkaResourceType } from '../request.ts';

/** What the broker sees. */
export interface KafkaAclRequest {
  principal: string;
  host: string;
  operation: KafkaOperation;
  resource: { type: KafkaResourceType; name: string };
}

const implied: Partial<Record<KafkaOperation, KafkaOperation[]>> = {
  DESCRIBE: ['READ', 'WRITE', 'DELETE', 'ALTER'],
  DESCRIBE_CONFIGS: ['ALTER_CONFIGS'],
};

/** Decides a request against ACL bindings; `allowEveryoneIfNoAclFound` defaults to false. */
export function evaluateKafkaAcls(
  acls: KafkaAclBinding[],
  req: KafkaAclRequest,
  allowEveryoneIfNoAclFound = false,
): Decision {
  const onResource = acls.filter(
    (a) =>
      a.resourceType === req.resource.type &&
      (a.patternType === 'LITERAL'
        ? a.resourceName === req.resource.name || a.resourceName === '*'
        : req.resource.name.startsWith(a.resourceName)),
  );
  if (onResource.length === 0)
    return allowEveryoneIfNoAclFound
      ? { allowed: true, reason: 'no ACL found; allow.everyone.if.no.acl.found=true' }
      : { allowed: false, reason: 'no ACL found; allow.everyone.if.no.acl.found=false' };
  const applicable = onResource.filter(
    (a) =>
      (a.principal === req.principal || a.principal === 'User:*') &&
      (a.host === '*' || a.host === req.host),
  );
  if (
    applicable.some(
      (a) =>
        a.permissionType === 'DENY' && (a.operation === req.operation || a.operation === 'ALL'),
    )
  )
    return { allowed: false, reason: 'a DENY ACL matches' };
  const ops = new Set<string>([req.operation, 'ALL', ...(implied[req.operation] ?? [])]);
  if (applicable.some((a) => a.permissionType === 'ALLOW' && ops.has(a.operation)))
    return { allowed: true, reason: 'an ALLOW ACL matches' };
  return { allowed: false, reason: 'no ALLOW ACL matches' };
}
