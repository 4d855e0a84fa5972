/**
 * CustomResourceDefinitions as data: parse and check upstream CRD YAML, derive which kinds a set serves and
 * whether the API server will validate them against a schema, and write the schema-less stand-ins used for
 * operators that no reachable registry serves. Pure: no I/O.
 */
import { parseAllDocuments } from 'yaml';

/** The part of an OpenAPI v3 schema this module looks at; everything else passes through. */
export interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  [field: string]: unknown;
}

/** One version of a CRD (`spec.versions[]`). */
export interface CrdVersion {
  name: string;
  served: boolean;
  storage: boolean;
  schema?: { openAPIV3Schema?: JsonSchema };
  [field: string]: unknown;
}

/** An `apiextensions.k8s.io/v1` CustomResourceDefinition, checked by {@link checkCrd}. */
export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: {
    name: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [field: string]: unknown;
  };
  spec: {
    group: string;
    names: {
      kind: string;
      plural: string;
      singular?: string;
      listKind?: string;
      [f: string]: unknown;
    };
    scope: 'Namespaced' | 'Cluster';
    versions: CrdVersion[];
    [field: string]: unknown;
  };
}

/** One served kind and version of a CRD set, with where it came from. */
export interface CrdKind {
  kind: string;
  group: string;
  version: string;
  /** Registry and artefact, e.g. `Go module sigs.k8s.io/gateway-api@v1.4.1 (config/crd/standard)`. */
  source: string;
  /** True when the API server checks objects against a real schema; false for a stand-in. */
  schemaValidated: boolean;
  /** The version the API server stores objects in. */
  storage: boolean;
}

/** A group/version/kind, as an object's `apiVersion` and `kind` name it. */
export interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

/** Annotation on every stand-in CRD; its value says why there is no schema. */
export const STAND_IN_ANNOTATION = 'trellis.dev/stand-in';

/** Annotation on every stand-in CRD: where the real CRD lives. */
export const STAND_IN_FOR_ANNOTATION = 'trellis.dev/stand-in-for';

const DNS_LABEL = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;
const GROUP = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$/;
const KIND = /^[A-Z][A-Za-z0-9]*$/;
const VERSION = /^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Check that `doc` is an `apiextensions.k8s.io/v1` CRD this module can reason about: name, group, names,
 * scope and at least one version, with `metadata.name` = `<plural>.<group>` as the API server demands.
 * Throws naming `where` and the first bad field.
 */
export function checkCrd(doc: unknown, where: string): CustomResourceDefinition {
  const fail = (field: string, why: string): never => {
    throw new Error(`${where}: ${field} ${why}`);
  };
  if (!isRecord(doc)) return fail('document', 'is not a mapping');
  if (doc.apiVersion !== 'apiextensions.k8s.io/v1')
    fail('apiVersion', `must be apiextensions.k8s.io/v1, got ${JSON.stringify(doc.apiVersion)}`);
  if (doc.kind !== 'CustomResourceDefinition')
    fail('kind', `must be CustomResourceDefinition, got ${JSON.stringify(doc.kind)}`);
  const metadata = isRecord(doc.metadata) ? doc.metadata : fail('metadata', 'is missing');
  const spec = isRecord(doc.spec) ? doc.spec : fail('spec', 'is missing');
  const names = isRecord(spec.names) ? spec.names : fail('spec.names', 'is missing');
  const group = typeof spec.group === 'string' && GROUP.test(spec.group) ? spec.group : null;
  if (group === null)
    fail('spec.group', `must be a DNS subdomain, got ${JSON.stringify(spec.group)}`);
  if (typeof names.kind !== 'string' || !KIND.test(names.kind))
    fail('spec.names.kind', `must be a CamelCase kind, got ${JSON.stringify(names.kind)}`);
  if (typeof names.plural !== 'string' || !DNS_LABEL.test(names.plural))
    fail('spec.names.plural', `must be a lowercase DNS label, got ${JSON.stringify(names.plural)}`);
  if (metadata.name !== `${String(names.plural)}.${String(group)}`)
    fail(
      'metadata.name',
      `must be ${String(names.plural)}.${String(group)}, got ${JSON.stringify(metadata.name)}`,
    );
  if (spec.scope !== 'Namespaced' && spec.scope !== 'Cluster')
    fail('spec.scope', `must be Namespaced or Cluster, got ${JSON.stringify(spec.scope)}`);
  const versions = Array.isArray(spec.versions) ? spec.versions : [];
  if (versions.length === 0) fail('spec.versions', 'must list at least one version');
  versions.forEach((v: unknown, i) => {
    if (!isRecord(v) || typeof v.name !== 'string' || !VERSION.test(v.name))
      fail(`spec.versions[${i}].name`, 'must be a Kubernetes API version such as v1 or v1beta2');
    const ver = v as Record<string, unknown>;
    if (typeof ver.served !== 'boolean' || typeof ver.storage !== 'boolean')
      fail(`spec.versions[${i}]`, 'must say served and storage (true or false)');
  });
  if (versions.filter((v: Record<string, unknown>) => v.storage === true).length !== 1)
    fail('spec.versions', 'must have exactly one storage version');
  return doc as unknown as CustomResourceDefinition;
}

/**
 * Parse a multi-document YAML file of CRDs (`---` separated; empty documents skipped), checking each.
 * `file` names the file in errors.
 */
export function parseCrds(text: string, file: string): CustomResourceDefinition[] {
  const out: CustomResourceDefinition[] = [];
  parseAllDocuments(text).forEach((d, i) => {
    if (d.errors.length > 0)
      throw new Error(`${file}: document ${i}: ${d.errors[0]?.message ?? 'YAML error'}`);
    const value: unknown = d.toJS({ maxAliasCount: 1000 });
    if (value === null || value === undefined) return;
    out.push(checkCrd(value, `${file}: document ${i}`));
  });
  return out;
}

/**
 * Whether `schema` makes the API server validate an object: it must describe some field besides the
 * `apiVersion`, `kind` and `metadata` every object has. A root that only preserves unknown fields, or a
 * `spec` that does, validates nothing.
 */
export function hasSchema(schema: JsonSchema | undefined): boolean {
  if (!schema || !isRecord(schema.properties)) return false;
  return Object.entries(schema.properties).some(
    ([field, sub]) =>
      !['apiVersion', 'kind', 'metadata'].includes(field) &&
      isRecord(sub) &&
      (isRecord(sub.properties) || (sub.type !== undefined && sub.type !== 'object')),
  );
}

/**
 * The served kinds of `docs`, one row per kind and served version, sorted by group, kind, version. A
 * stand-in's row names what it stands in for after `source`.
 */
export function manifestOf(docs: readonly CustomResourceDefinition[], source: string): CrdKind[] {
  const rows: CrdKind[] = [];
  for (const d of docs) {
    const standIn = d.metadata.annotations?.[STAND_IN_ANNOTATION] !== undefined;
    const upstream = d.metadata.annotations?.[STAND_IN_FOR_ANNOTATION];
    for (const v of d.spec.versions) {
      if (!v.served) continue;
      rows.push({
        kind: d.spec.names.kind,
        group: d.spec.group,
        version: v.name,
        source: standIn && upstream ? `${source} for ${upstream}` : source,
        schemaValidated: !standIn && hasSchema(v.schema?.openAPIV3Schema),
        storage: v.storage,
      });
    }
  }
  return sortKinds(rows);
}

/** Sort manifest rows by group, kind, then version. */
export function sortKinds(rows: CrdKind[]): CrdKind[] {
  return rows.sort(
    (a, b) =>
      a.group.localeCompare(b.group) ||
      a.kind.localeCompare(b.kind) ||
      a.version.localeCompare(b.version),
  );
}

/** What a stand-in CRD is made from: the kind the stack creates, and why there is no upstream schema. */
export interface StandInSpec {
  group: string;
  kind: string;
  /** Served versions; the first is the storage version. */
  versions: readonly string[];
  /** @default 'Namespaced' */
  scope?: 'Namespaced' | 'Cluster';
  /** @default the kind in lower case plus `s` (keycloaks, k8ssandraclusters) */
  plural?: string;
  /** Where the real CRD lives, e.g. `keycloak/keycloak-k8s-resources 26.2.0`. */
  upstream: string;
  /** Why it is not fetched, e.g. `served by no registry reachable here`. */
  reason: string;
}

/**
 * A schema-less CRD for `spec`: the API server stores any `spec` and `status` object of this kind without
 * checking a field, so that a program that creates such objects applies; nothing about their contents is
 * proven. Marked with {@link STAND_IN_ANNOTATION}. Throws naming the bad field of `spec`.
 */
export function standInCrd(spec: StandInSpec): CustomResourceDefinition {
  const where = `stand-in ${spec.group}/${spec.kind}`;
  if (spec.versions.length === 0)
    throw new Error(`${where}: versions must list at least one version`);
  const plural = spec.plural ?? `${spec.kind.toLowerCase()}s`;
  const open: JsonSchema = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
  const doc = {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${spec.group}`,
      annotations: {
        [STAND_IN_ANNOTATION]: `no schema: ${spec.upstream} is ${spec.reason}`,
        [STAND_IN_FOR_ANNOTATION]: spec.upstream,
      },
    },
    spec: {
      group: spec.group,
      names: {
        kind: spec.kind,
        listKind: `${spec.kind}List`,
        plural,
        singular: spec.kind.toLowerCase(),
      },
      scope: spec.scope ?? 'Namespaced',
      versions: spec.versions.map((name, i) => ({
        name,
        served: true,
        storage: i === 0,
        subresources: { status: {} },
        schema: {
          openAPIV3Schema: {
            type: 'object',
            properties: { spec: { ...open }, status: { ...open } },
          },
        },
      })),
    },
  };
  return checkCrd(doc, where);
}

/** Split `group/version` (core `v1` has the empty group). */
export function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const i = apiVersion.lastIndexOf('/');
  return i < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, i), version: apiVersion.slice(i + 1) };
}

/** The entries of `wanted` that no row of `manifest` serves (same group, version and kind). */
export function missingKinds(
  manifest: readonly CrdKind[],
  wanted: readonly GroupVersionKind[],
): GroupVersionKind[] {
  return wanted.filter(
    (w) =>
      !manifest.some((m) => m.group === w.group && m.version === w.version && m.kind === w.kind),
  );
}

/** A plain-text table of `manifest` for test output and `doctor`: kind, apiVersion, validated, source. */
export function formatManifest(manifest: readonly CrdKind[]): string {
  const rows = [['kind', 'apiVersion', 'schema', 'source']];
  for (const m of manifest)
    rows.push([
      m.kind,
      `${m.group}/${m.version}`,
      m.schemaValidated ? 'validated' : 'stand-in',
      m.source,
    ]);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
