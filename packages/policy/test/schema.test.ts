/** The published JSON Schema (docs/schema) is current, and it agrees with the model's own validation. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { modelJsonSchema } from '../src/index.ts';
import { referenceData } from './fixtures.ts';

const published = fileURLToPath(
  new URL('../../../docs/schema/trellis-policy.schema.json', import.meta.url),
);

describe('published JSON Schema', () => {
  it('is up to date (regenerate: ./trellis policy schema --out docs/schema/trellis-policy.schema.json)', () => {
    expect(readFileSync(published, 'utf8')).toBe(`${JSON.stringify(modelJsonSchema(), null, 2)}\n`);
  });

  const validate = new Ajv2020({ strict: false, allErrors: true }).compile(modelJsonSchema());

  it('accepts the reference model', () => {
    expect(validate(referenceData())).toBe(true);
  });

  it('rejects an unknown field and a wrong type, as an editor would show', () => {
    const d = referenceData() as Record<string, unknown>;
    d['trustDomian'] = 'typo';
    expect(validate(d)).toBe(false);
    expect(validate.errors?.map((e) => [e.keyword, e.params])).toContainEqual([
      'additionalProperties',
      { additionalProperty: 'trustDomian' },
    ]);
    const e = referenceData() as { workloads: Record<string, { ports: { port: unknown }[] }> };
    const port = e.workloads['orders-api']?.ports[0];
    if (port) port.port = 'http';
    expect(validate(e)).toBe(false);
  });
});
