import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  STAND_IN_ANNOTATION,
  checkCrd,
  formatManifest,
  hasSchema,
  manifestOf,
  missingKinds,
  parseCrds,
  splitApiVersion,
  standInCrd,
  type CustomResourceDefinition,
  type StandInSpec,
} from '../src/toolchain/crd-documents.ts';
import { PLATFORM_KINDS, STAND_INS, STRIMZI, sourceLabel } from '../src/toolchain/crd-pins.ts';
import {
  goModDownload,
  parseGoDownload,
  renderCertManagerChartYaml,
  strimziGeneratorArgs,
} from '../src/toolchain/crd-sources.ts';
import { crdVersionSet } from '../src/toolchain/crds.ts';
import { FetchError } from '../src/toolchain/errors.ts';

const keycloak: StandInSpec = {
  group: 'k8s.keycloak.org',
  kind: 'KeycloakRealmImport',
  versions: ['v2alpha1', 'v2beta1'],
  upstream: 'keycloak/keycloak-k8s-resources 26.2.0',
  reason: 'served by no registry reachable here',
};

/** A small real-shaped CRD: `served`/`storage` per version, with a schema for `spec.replicas`. */
function widget(
  overrides: Partial<CustomResourceDefinition['spec']> = {},
): CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com',
      names: { kind: 'Widget', plural: 'widgets' },
      scope: 'Namespaced',
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: 'object',
              properties: {
                spec: { type: 'object', properties: { replicas: { type: 'integer' } } },
              },
            },
          },
        },
        { name: 'v1beta1', served: false, storage: false },
      ],
      ...overrides,
    },
  };
}

describe('standInCrd', () => {
  const doc = standInCrd(keycloak);

  it('names the CRD <plural>.<group> and serves every version, storing the first', () => {
    expect(doc.metadata.name).toBe('keycloakrealmimports.k8s.keycloak.org');
    expect(doc.spec.names).toEqual({
      kind: 'KeycloakRealmImport',
      listKind: 'KeycloakRealmImportList',
      plural: 'keycloakrealmimports',
      singular: 'keycloakrealmimport',
    });
    expect(doc.spec.scope).toBe('Namespaced');
    expect(doc.spec.versions.map((v) => [v.name, v.served, v.storage])).toEqual([
      ['v2alpha1', true, true],
      ['v2beta1', true, false],
    ]);
  });

  it('preserves any spec and status and says why it has no schema', () => {
    const schema = doc.spec.versions[0]?.schema?.openAPIV3Schema;
    expect(schema?.properties?.spec).toEqual({
      type: 'object',
      'x-kubernetes-preserve-unknown-fields': true,
    });
    expect(schema?.properties?.status?.['x-kubernetes-preserve-unknown-fields']).toBe(true);
    expect(doc.metadata.annotations?.[STAND_IN_ANNOTATION]).toBe(
      'no schema: keycloak/keycloak-k8s-resources 26.2.0 is served by no registry reachable here',
    );
  });

  it('is listed as not schema-validated, naming what it stands in for', () => {
    expect(manifestOf([doc], 'stand-in (no schema)')).toEqual([
      {
        kind: 'KeycloakRealmImport',
        group: 'k8s.keycloak.org',
        version: 'v2alpha1',
        source: 'stand-in (no schema) for keycloak/keycloak-k8s-resources 26.2.0',
        schemaValidated: false,
        storage: true,
      },
      expect.objectContaining({ version: 'v2beta1', schemaValidated: false, storage: false }),
    ]);
  });

  it('survives a YAML round trip as a valid CRD', () => {
    expect(parseCrds(stringify(doc), 'stand-in.yaml')).toEqual([doc]);
  });

  it('takes an explicit plural and scope', () => {
    const d = standInCrd({ ...keycloak, plural: 'realmimports', scope: 'Cluster' });
    expect(d.metadata.name).toBe('realmimports.k8s.keycloak.org');
    expect(d.spec.scope).toBe('Cluster');
  });

  it('refuses a spec without versions or with a bad kind, naming the field', () => {
    expect(() => standInCrd({ ...keycloak, versions: [] })).toThrow(
      'stand-in k8s.keycloak.org/KeycloakRealmImport: versions must list at least one version',
    );
    expect(() => standInCrd({ ...keycloak, kind: 'keycloak' })).toThrow(
      'stand-in k8s.keycloak.org/keycloak: spec.names.kind must be a CamelCase kind, got "keycloak"',
    );
    expect(() => standInCrd({ ...keycloak, versions: ['2alpha1'] })).toThrow(
      'spec.versions[0].name must be a Kubernetes API version',
    );
  });
});

describe('checkCrd', () => {
  it('accepts a real-shaped CRD', () => {
    expect(checkCrd(widget(), 'w.yaml')).toEqual(widget());
  });

  it('names the file and the first bad field', () => {
    expect(() =>
      checkCrd({ ...widget(), apiVersion: 'apiextensions.k8s.io/v1beta1' }, 'w.yaml'),
    ).toThrow(
      'w.yaml: apiVersion must be apiextensions.k8s.io/v1, got "apiextensions.k8s.io/v1beta1"',
    );
    expect(() =>
      checkCrd({ ...widget(), metadata: { name: 'widget.example.com' } }, 'w.yaml'),
    ).toThrow('w.yaml: metadata.name must be widgets.example.com, got "widget.example.com"');
    expect(() => checkCrd(widget({ group: 'example' }), 'w.yaml')).toThrow(
      'w.yaml: spec.group must be a DNS subdomain, got "example"',
    );
    expect(() => checkCrd(widget({ versions: [] }), 'w.yaml')).toThrow(
      'w.yaml: spec.versions must list at least one version',
    );
    const twoStored = widget();
    twoStored.spec.versions[1]!.storage = true;
    expect(() => checkCrd(twoStored, 'w.yaml')).toThrow(
      'w.yaml: spec.versions must have exactly one storage version',
    );
    expect(() => checkCrd(['not', 'a', 'mapping'], 'w.yaml')).toThrow(
      'w.yaml: document is not a mapping',
    );
  });
});

describe('parseCrds', () => {
  it('reads every document of a multi-document file and skips empty ones', () => {
    const text = `---\n${stringify(widget())}---\n# only a comment\n---\n${stringify(standInCrd(keycloak))}`;
    expect(parseCrds(text, 'all.yaml').map((d) => d.metadata.name)).toEqual([
      'widgets.example.com',
      'keycloakrealmimports.k8s.keycloak.org',
    ]);
  });

  it('names the file and document of a broken one', () => {
    const text = `${stringify(widget())}---\nkind: Service\napiVersion: v1\n`;
    expect(() => parseCrds(text, 'all.yaml')).toThrow(
      'all.yaml: document 1: apiVersion must be apiextensions.k8s.io/v1, got "v1"',
    );
    expect(() => parseCrds('a: [1, 2\n', 'bad.yaml')).toThrow(/^bad\.yaml: document 0: /);
  });
});

describe('hasSchema', () => {
  it('is true when spec has properties or a field has a non-object type', () => {
    expect(hasSchema(widget().spec.versions[0]?.schema?.openAPIV3Schema)).toBe(true);
    expect(hasSchema({ type: 'object', properties: { data: { type: 'string' } } })).toBe(true);
  });

  it('is false for no schema, a preserving root, or a spec that preserves anything', () => {
    expect(hasSchema(undefined)).toBe(false);
    expect(hasSchema({ type: 'object', 'x-kubernetes-preserve-unknown-fields': true })).toBe(false);
    expect(
      hasSchema({
        type: 'object',
        properties: {
          apiVersion: { type: 'string' },
          kind: { type: 'string' },
          metadata: { type: 'object' },
          spec: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true },
        },
      }),
    ).toBe(false);
  });
});

describe('manifestOf', () => {
  it('lists served versions only, validated when they have a schema', () => {
    expect(manifestOf([widget()], 'Go module example.com/w@v1.0.0')).toEqual([
      {
        kind: 'Widget',
        group: 'example.com',
        version: 'v1',
        source: 'Go module example.com/w@v1.0.0',
        schemaValidated: true,
        storage: true,
      },
    ]);
  });

  it('marks a stand-in as not validated even if someone gave it a schema', () => {
    const d = widget();
    d.metadata.annotations = { [STAND_IN_ANNOTATION]: 'no schema' };
    expect(manifestOf([d], 'x')[0]?.schemaValidated).toBe(false);
  });

  it('prints one row per kind version with its schema status', () => {
    const table = formatManifest([
      ...manifestOf([widget()], 'upstream'),
      ...manifestOf([standInCrd(keycloak)], 'stand-in'),
    ]);
    const lines = table.split('\n');
    expect(lines[0]).toMatch(/^kind\s+apiVersion\s+schema\s+source$/);
    expect(lines[1]).toMatch(/^Widget\s+example\.com\/v1\s+validated\s+upstream$/);
    expect(lines[2]).toMatch(
      /^KeycloakRealmImport\s+k8s\.keycloak\.org\/v2alpha1\s+stand-in\s+stand-in for/,
    );
  });
});

describe('missingKinds and splitApiVersion', () => {
  it('finds what a manifest does not serve, by group, version and kind', () => {
    const m = manifestOf([widget()], 'x');
    expect(
      missingKinds(m, [
        { group: 'example.com', version: 'v1', kind: 'Widget' },
        { group: 'example.com', version: 'v1beta1', kind: 'Widget' },
        { group: 'example.org', version: 'v1', kind: 'Widget' },
      ]),
    ).toEqual([
      { group: 'example.com', version: 'v1beta1', kind: 'Widget' },
      { group: 'example.org', version: 'v1', kind: 'Widget' },
    ]);
  });

  it('splits apiVersion, core included', () => {
    expect(splitApiVersion('gateway.networking.k8s.io/v1beta1')).toEqual({
      group: 'gateway.networking.k8s.io',
      version: 'v1beta1',
    });
    expect(splitApiVersion('v1')).toEqual({ group: '', version: 'v1' });
  });
});

describe('the version set', () => {
  it('names the upstream versions and a hash of the rest', () => {
    expect(crdVersionSet()).toMatch(
      /^gwapi1\.4\.1-istio1\.30\.8-cm1\.19\.1-strimzi0\.50\.1-[0-9a-f]{8}$/,
    );
  });

  it('expects every stand-in kind from the stand-in source, and no stand-in elsewhere', () => {
    expect(PLATFORM_KINDS['stand-ins'].map((k) => k.kind).sort()).toEqual(
      STAND_INS.map((s) => s.kind).sort(),
    );
    const upstream = Object.entries(PLATFORM_KINDS)
      .filter(([id]) => id !== 'stand-ins')
      .flatMap(([, kinds]) => kinds.map((k) => k.kind));
    for (const s of STAND_INS) expect(upstream).not.toContain(s.kind);
  });

  it('labels each source with its registry, artefact and version', () => {
    expect(sourceLabel('gateway-api')).toBe(
      'Go module sigs.k8s.io/gateway-api@v1.4.1 (config/crd/standard)',
    );
    expect(sourceLabel('strimzi')).toBe(
      'Maven Central io.strimzi:api:0.50.1, generated by io.strimzi:crd-generator:1.2.0',
    );
  });
});

describe('strimziGeneratorArgs', () => {
  it('repeats the no-description Kafka run of api-0.50.1.pom', () => {
    const kafkaRun = STRIMZI.runs.find((r) =>
      Object.values(r.classes).includes('040-Crd-kafka.yaml'),
    );
    expect(kafkaRun).toBeDefined();
    expect(strimziGeneratorArgs(kafkaRun!, '/lib/*:/gen.jar', '/out')).toEqual([
      '-cp',
      '/lib/*:/gen.jar',
      'io.strimzi.crdgenerator.CrdGenerator',
      '--label',
      'app:strimzi',
      '--label',
      'strimzi.io/crd-install:true',
      '--target-kube',
      '1.16+',
      '--crd-api-version',
      'v1',
      '--api-versions',
      'v1beta2,v1',
      '--describe-api-versions',
      'v1alpha1',
      '--storage-version',
      'v1beta2',
      '--yaml',
      'io.strimzi.api.kafka.model.kafka.Kafka=/out/040-Crd-kafka.yaml',
    ]);
  });

  it('generates KafkaTopic and KafkaUser with their old versions kept', () => {
    const eo = STRIMZI.runs.find((r) =>
      Object.values(r.classes).includes('044-Crd-kafkauser.yaml'),
    );
    const args = strimziGeneratorArgs(eo!, 'cp', '/out');
    expect(args[args.indexOf('--api-versions') + 1]).toBe('v1alpha1,v1beta1,v1beta2,v1');
    expect(args).not.toContain('--describe-api-versions');
    expect(args.slice(-2)).toEqual([
      'io.strimzi.api.kafka.model.topic.KafkaTopic=/out/043-Crd-kafkatopic.yaml',
      'io.strimzi.api.kafka.model.user.KafkaUser=/out/044-Crd-kafkauser.yaml',
    ]);
  });
});

describe('renderCertManagerChartYaml', () => {
  const template = [
    'apiVersion: v2',
    'name: cert-manager',
    'annotations:',
    '  artifacthub.io/prerelease: "{{IS_PRERELEASE}}"',
    '# The version and appVersion fields are set automatically by the release tool',
    'version: v0.0.0',
    'appVersion: v0.0.0',
    '',
  ].join('\n');

  it('stamps the version, as cert-manager release tool does', () => {
    const out = renderCertManagerChartYaml(template, 'v1.19.1');
    expect(out).toContain('\nversion: v1.19.1\n');
    expect(out).toContain('\nappVersion: v1.19.1\n');
    expect(out).toContain('artifacthub.io/prerelease: "false"');
  });

  it('fails when the template changed shape', () => {
    expect(() =>
      renderCertManagerChartYaml(template.replace('version: v0.0.0', 'version: 1'), 'v1.19.1'),
    ).toThrow('no "version: v0.0.0" / "appVersion: v0.0.0" line to stamp');
    expect(() => renderCertManagerChartYaml(`${template}x: "{{NEW_THING}}"\n`, 'v1.19.1')).toThrow(
      'placeholder {{NEW_THING}} not filled',
    );
  });
});

describe('goModDownload', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-crds-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  /** A stand-in `go` that prints `json` and exits with `code`. */
  function fakeGo(name: string, json: object, code: number): string {
    const bin = join(dir, name);
    writeFileSync(
      bin,
      `#!/bin/sh\ncat <<'EOF'\n${JSON.stringify(json, null, 1)}\nEOF\nexit ${code}\n`,
    );
    chmodSync(bin, 0o755);
    return bin;
  }

  it('returns the module directory go reports', async () => {
    const bin = fakeGo('go-ok', { Path: 'example.com/m', Version: 'v1.0.0', Dir: dir }, 0);
    await expect(
      goModDownload(
        { module: 'example.com/m', version: 'v1.0.0' },
        { go: { bin, version: '1.26' }, cwd: dir },
      ),
    ).resolves.toBe(dir);
  });

  it('turns a refused version into a FetchError naming the module and the Go module proxy', async () => {
    const error =
      'istio.io/api@v1.30.5: reading https://proxy.example/istio.io/api/@v/v1.30.5.info: 403 Forbidden\n\tserver response: not available';
    const bin = fakeGo('go-403', { Path: 'istio.io/api', Version: 'v1.30.5', Error: error }, 1);
    const p = goModDownload(
      { module: 'istio.io/api', version: 'v1.30.5' },
      { go: { bin, version: '1.26' }, cwd: dir },
    );
    await expect(p).rejects.toBeInstanceOf(FetchError);
    await expect(p).rejects.toThrow(
      'could not fetch Go module istio.io/api@v1.30.5 from the Go module proxy: istio.io/api@v1.30.5: reading https://proxy.example/istio.io/api/@v/v1.30.5.info: 403 Forbidden',
    );
  });

  it('parses Dir and the first line of Error after other output', () => {
    expect(parseGoDownload('go: note\n{"Dir": "/m", "Error": "a\\nb"}\n')).toEqual({
      dir: '/m',
      error: 'a',
    });
    expect(parseGoDownload('no json')).toEqual({});
  });
});
