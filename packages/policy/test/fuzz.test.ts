/**
 * Fuzzing: malformed YAML and schema-breaking data never throw; each comes back as a clean error list
 * (non-empty, every error with a path and a reason, never an "internal error").
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { parseModel, validateModel } from '../src/index.ts';
import type { ModelResult } from '../src/index.ts';
import { referenceData, referenceText } from './fixtures.ts';

const base = referenceData();
const fresh = (): Record<string, unknown> => structuredClone(base);

function clean(r: ModelResult): void {
  if (r.ok) return;
  expect(r.errors.length).toBeGreaterThan(0);
  for (const e of r.errors) {
    expect(typeof e.path).toBe('string');
    expect(e.path.length).toBeGreaterThan(0);
    expect(typeof e.reason).toBe('string');
    expect(e.reason.length).toBeGreaterThan(0);
    expect(e.reason).not.toMatch(/^internal error/);
  }
}

/** Any JSON-ish value, including the awkward ones. */
const anyValue = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom(null, true, false, 0, -1, 1.5, Number.NaN, '', '*', 'spiffe://x', '__proto__'),
    fc.string(),
    fc.integer(),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 8 }), tie('value'), { maxKeys: 4 }),
  ),
})).value;

/** Paths into the reference model, to break one field at a time. */
function paths(v: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (v === null || typeof v !== 'object') return [prefix];
  const entries = Array.isArray(v) ? v.map((x, i) => [i, x] as const) : Object.entries(v);
  return [prefix, ...entries.flatMap(([k, x]) => paths(x, [...prefix, k]))];
}

describe('fuzzing', () => {
  it('random text never throws', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 400 }), (text) => {
        clean(parseModel(text));
      }),
      { numRuns: 2000 },
    );
  }, 60_000);

  it('mangled reference YAML never throws', () => {
    fc.assert(
      fc.property(
        fc.nat(referenceText.length),
        fc.nat(40),
        fc.string({
          maxLength: 12,
          unit: fc.constantFrom(
            ':',
            '-',
            '[',
            ']',
            '{',
            '}',
            ' ',
            '\n',
            '\t',
            '&',
            '*',
            '!',
            '|',
            '>',
            '"',
            "'",
            '#',
            'a',
            '1',
          ),
        }),
        (at, cut, insert) => {
          clean(parseModel(referenceText.slice(0, at) + insert + referenceText.slice(at + cut)));
        },
      ),
      { numRuns: 300 },
    );
  }, 60_000);

  it('YAML bombs, tags and anchors come back as errors', () => {
    const bomb = [
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      ...Array.from(
        { length: 9 },
        (_, i) =>
          `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`,
      ),
    ].join('\n');
    for (const text of [
      bomb,
      '!!binary aGVsbG8=',
      '--- !<tag:x> {}',
      'a: *undefined',
      '? [a]\n: 1',
      '%YAML 9.9\n---\n{}',
      '\u0000',
      '---\n---\n',
      '',
    ]) {
      const r = parseModel(text);
      expect(r.ok).toBe(false);
      clean(r);
    }
  }, 60_000);

  it('replacing any field of the reference model with anything never throws', () => {
    const all = paths(base);
    fc.assert(
      fc.property(fc.nat(all.length - 1), anyValue, (i, value) => {
        const d = fresh();
        const path = all[i] ?? [];
        if (path.length === 0) {
          clean(validateModel(value));
          return;
        }
        let cur: unknown = d;
        for (const k of path.slice(0, -1)) cur = (cur as Record<string | number, unknown>)[k];
        (cur as Record<string | number, unknown>)[path[path.length - 1] ?? ''] = value;
        clean(validateModel(d));
        // Through YAML too, for a tenth of the runs (YAML parsing is the slow part).
        if (i % 10 === 0) clean(parseModel(stringify(d)));
      }),
      { numRuns: 2000 },
    );
  }, 60_000);

  it('deleting any field of the reference model never throws', () => {
    const all = paths(base).filter((p) => p.length > 0);
    fc.assert(
      fc.property(fc.nat(all.length - 1), (i) => {
        const d = fresh();
        const path = all[i] ?? [];
        let cur: unknown = d;
        for (const k of path.slice(0, -1)) cur = (cur as Record<string | number, unknown>)[k];
        const parent = cur as Record<string | number, unknown>;
        const key = path[path.length - 1] ?? '';
        if (Array.isArray(parent)) parent.splice(Number(key), 1);
        else delete parent[key];
        clean(validateModel(d));
      }),
      { numRuns: 1000 },
    );
  }, 60_000);
});
