/**
 * The CRD set installed for real: fetched from the Go module proxy and Maven Central (Strimzi's generated
 * with a JDK ≥ 21) into the per-user cache, then read back. Prints which kinds are schema-validated and which
 * are stand-ins.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatManifest, type CustomResourceDefinition } from '../src/toolchain/crd-documents.ts';
import {
  CERT_MANAGER,
  GATEWAY_API,
  ISTIO_BASE_CRD_FILE,
  PLATFORM_KINDS,
} from '../src/toolchain/crd-pins.ts';
import { crdSet, crdVersionSet, crds, type CrdSet } from '../src/toolchain/crds.ts';

let set: CrdSet;

beforeAll(async () => {
  set = await crdSet();
  process.stdout.write(`CRD set ${set.versionSet}:\n${formatManifest(set.manifest)}\n`);
});

function crd(name: string): CustomResourceDefinition {
  const d = set.documents.find((x) => x.metadata.name === name);
  if (!d) throw new Error(`no CRD ${name} in the set`);
  return d;
}

describe('the installed CRD set', () => {
  it('serves every kind the platform creates, schema-validated unless it is a stand-in', () => {
    for (const [id, kinds] of Object.entries(PLATFORM_KINDS)) {
      for (const k of kinds) {
        const row = set.manifest.find(
          (m) => m.group === k.group && m.version === k.version && m.kind === k.kind,
        );
        expect(row, `${k.group}/${k.version} ${k.kind}`).toBeDefined();
        expect(row?.schemaValidated, `${k.kind} from ${id}`).toBe(id !== 'stand-ins');
      }
    }
  });

  it('holds each CRD once', () => {
    const names = set.documents.map((d) => d.metadata.name);
    expect(new Set(names).size).toBe(names.length);
  });

  it('has the Gateway API standard channel at the pinned bundle version', () => {
    const grant = crd('referencegrants.gateway.networking.k8s.io');
    expect(grant.metadata.annotations?.['gateway.networking.k8s.io/bundle-version']).toBe(
      GATEWAY_API.version,
    );
    expect(grant.metadata.annotations?.['gateway.networking.k8s.io/channel']).toBe('standard');
  });

  it('has real Strimzi schemas: v1 KafkaUser describes its ACLs', () => {
    const user = crd('kafkausers.kafka.strimzi.io');
    const v1 = user.spec.versions.find((v) => v.name === 'v1');
    expect(v1?.served).toBe(true);
    const spec = v1?.schema?.openAPIV3Schema?.properties?.spec;
    expect(Object.keys(spec?.properties ?? {})).toEqual(
      expect.arrayContaining(['authentication', 'authorization']),
    );
  });

  it('ships the Istio charts and a stamped cert-manager chart', () => {
    const chart = (role: keyof CrdSet['charts']): { name: string; version: string } =>
      parse(readFileSync(join(set.charts[role], 'Chart.yaml'), 'utf8')) as {
        name: string;
        version: string;
      };
    expect(chart('istioBase').name).toBe('base');
    expect(chart('istiod').name).toBe('istiod');
    expect(chart('istioCni').name).toBe('cni');
    expect(chart('ztunnel').name).toBe('ztunnel');
    expect(chart('certManager')).toMatchObject({
      name: 'cert-manager',
      version: CERT_MANAGER.version,
    });
    // The base chart templates the set's own Istio CRDs, not those of the main branch it comes from.
    expect(readFileSync(join(set.charts.istioBase, ISTIO_BASE_CRD_FILE), 'utf8')).toBe(
      readFileSync(join(set.dir, 'crds', 'istio', 'customresourcedefinitions.gen.yaml'), 'utf8'),
    );
    expect(
      existsSync(
        join(set.charts.certManager, 'templates', 'crd-cert-manager.io_certificates.yaml'),
      ),
    ).toBe(true);
  });

  it('is reused from the cache and reported by doctor', async () => {
    const t0 = Date.now();
    expect(await crds.ensure()).toBe(set.dir);
    expect(Date.now() - t0).toBeLessThan(2_000);
    const check = await crds.check();
    expect(check).toMatchObject({ name: 'crds', found: crdVersionSet(), runs: true });
    expect(check.problem).toBeUndefined();
    const standIns = set.manifest.filter((m) => !m.schemaValidated).length;
    expect(standIns).toBe(PLATFORM_KINDS['stand-ins'].length);
    expect(check.location).toBe(
      `${set.dir} (${set.manifest.length - standIns} kind versions schema-validated, ${standIns} stand-ins)`,
    );
  });
});
