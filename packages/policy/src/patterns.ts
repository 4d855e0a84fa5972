/**
 * The field patterns of the model, declared once. Validation (validate/) tests a value with a rule's
 * `re` and reports its `reason`; the published JSON Schema carries the field's pattern from
 * `jsonPatterns` (schema.ts), so an editor flags what validation rejects. Where validation makes two
 * tests with their own reasons (a DNS label that is also not a reserved name), the JSON Schema pattern
 * is both, combined from the same parts. JSON Schema patterns are ECMA-262 regular expressions
 * without flags (https://json-schema.org/draft/2020-12/json-schema-core#section-6.4).
 */
import { dataServices } from './identity.ts';

/** A rule on a string: the regular expression and what validation says when it fails. */
export interface PatternRule {
  re: RegExp;
  reason: string;
}

/**
 * Cassandra's system keyspaces (5.0; `system_cluster_metadata` arrives with 5.1/TCM). Apps never get a
 * grant on these. https://cassandra.apache.org/doc/5.0/cassandra/architecture/storage-engine.html
 */
export const cassandraSystemKeyspaces = [
  'system',
  'system_auth',
  'system_schema',
  'system_distributed',
  'system_traces',
  'system_views',
  'system_virtual_schema',
  'system_cluster_metadata',
] as const;

/** Hosts that may be reached over plain http (a loopback identity provider in development). */
export const loopbackHosts = ['localhost', '127.0.0.1', '[::1]'] as const;

const dnsLabelBody = '[a-z]([a-z0-9-]{0,61}[a-z0-9])?';
const cqlNameBody = '[a-z_][a-z0-9_]{0,47}';
const kafkaNameBody = '[A-Za-z0-9._-]{1,249}';
const pathTemplateBody = '(\\/|(\\/([A-Za-z0-9._~-]+|\\{[A-Za-z_][A-Za-z0-9_]*\\}))+)';

/** A DNS label (RFC 1123): names of workloads, namespaces, regions, providers, routes, agents. */
export const dnsLabel: PatternRule = {
  re: new RegExp(`^${dnsLabelBody}$`),
  reason:
    "must be a DNS label: lowercase letters, digits and '-', starting with a letter, at most 63 characters",
};

/** The name the production budgets go by in reports; no environment may take it. */
export const productionName = 'production';

/** SPIFFE trust domain: https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md#21-trust-domain */
export const trustDomain: PatternRule = {
  re: /^[a-z0-9._-]+$/,
  reason: "must be a SPIFFE trust domain: lowercase letters, digits, '.', '-' and '_', no scheme",
};

/** Cassandra identifiers: https://cassandra.apache.org/doc/5.0/cassandra/developing/cql/ddl.html */
export const cqlName: PatternRule = {
  re: new RegExp(`^${cqlNameBody}$`),
  reason:
    'must be a lowercase Cassandra name: a-z, 0-9 and _, not starting with a digit, at most 48 characters',
};

/** Kafka topic and group names: legal characters [a-zA-Z0-9._-], at most 249 (kafka Topic.java). */
export const kafkaName: PatternRule = {
  re: new RegExp(`^${kafkaNameBody}$`),
  reason: "must be a Kafka name: letters, digits, '.', '_' and '-', at most 249 characters",
};

/** A route's path template (dot segments are refused separately: see `hasDotSegment`). */
export const pathTemplate: PatternRule = {
  re: new RegExp(`^${pathTemplateBody}$`),
  reason:
    "must be a path template starting with '/': segments of letters, digits and ._~- or a {param}",
};

/** Whether a path has a `.` or `..` segment (which a proxy would normalize away). */
export function hasDotSegment(path: string): boolean {
  return path.split('/').some((s) => s === '.' || s === '..');
}

/** A claim name; dots nest (`realm_access.roles`). */
export const claimName: PatternRule = {
  re: /^[A-Za-z_][A-Za-z0-9_.-]*$/,
  reason: 'a claim name is letters, digits, _, - and . (for nesting)',
};

/** Escapes a literal for a regular expression. */
function reEscape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** `(?!(?:a|b)$)`: none of these words, exactly. */
function noneOf(words: readonly string[]): string {
  return `(?!(?:${words.map(reEscape).join('|')})$)`;
}

/** A case-insensitive pattern for a literal (JSON Schema patterns have no `i` flag). */
function anyCase(s: string): string {
  return [...reEscape(s)]
    .map((c) => (/[a-z]/i.test(c) ? `[${c.toUpperCase()}${c.toLowerCase()}]` : c))
    .join('');
}

/** No `*` anywhere: wildcards are refused in every name that grants something. */
const noWildcard = '^[^*]+$';
const loopbackAuthority = `(?:[^/?#@]*@)?(?:${loopbackHosts.map((h) => anyCase(h)).join('|')})(?::[0-9]*)?(?:[/?#]|$)`;

/**
 * The JSON Schema pattern of each pattern-checked field. Each is the conjunction of validation's tests
 * on that field. A reference (a `calls` entry, a grant's keyspace) gets the pattern of what it names:
 * validation refuses any value that names nothing declared, and declared names match that pattern.
 */
export const jsonPatterns = {
  dnsLabel: dnsLabel.re.source,
  trustDomain: trustDomain.re.source,
  /** A workload name or service account: a DNS label that is not a data service's name. */
  workloadName: `^${noneOf(dataServices)}${dnsLabelBody}$`,
  /** https, or http to a loopback host (validation parses the URL; this is the same rule as text). */
  providerUrl: `^(?:${anyCase('https')}:|${anyCase('http')}://${loopbackAuthority})`,
  /** A scope: no whitespace (scopes are space-separated in tokens) and no `*`. */
  scope: '^[^\\s*]+$',
  noWildcard,
  path: `^(?!.*\\/\\.\\.?(?:\\/|$))${pathTemplateBody}$`,
  claimName: claimName.re.source,
  /** A declared keyspace: a Cassandra name that is not a system keyspace. */
  keyspaceName: `^${noneOf(cassandraSystemKeyspaces)}${cqlNameBody}$`,
  cqlName: cqlName.re.source,
  /** A topic: a Kafka name other than `.` and `..`. */
  topicName: `^(?!\\.\\.?$)${kafkaNameBody}$`,
  kafkaName: kafkaName.re.source,
  /** An environment of `budgets.environments`: a DNS label other than `production`. */
  environmentName: `^${noneOf([productionName])}${dnsLabelBody}$`,
} as const;
