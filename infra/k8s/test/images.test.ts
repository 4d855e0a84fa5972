import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { digestPlaceholder, referencePlaceholder } from '../images.ts';

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

describe('digestPlaceholder', () => {
  it('accepts real SHA-256 digests (10,000 of them, none refused)', () => {
    const refused: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const hex = sha(`image ${i}`);
      if (digestPlaceholder(hex) !== null) refused.push(hex);
    }
    expect(refused).toEqual([]);
  });

  it('refuses each shape of made-up digest with the rule it breaks', () => {
    expect(digestPlaceholder('f'.repeat(64))).toBe(
      'digest repeats "f": a placeholder, not a SHA-256 digest',
    );
    expect(digestPlaceholder('abc'.repeat(21) + 'a')).toBe(
      'digest repeats "abc": a placeholder, not a SHA-256 digest',
    );
    // Consecutive digits counting up, inside an otherwise random-looking value.
    const run = `${sha('a').slice(0, 20)}0123456789${sha('b').slice(0, 34)}`;
    expect(digestPlaceholder(run)).toBe(
      'digest counts up by one over 10 digits (0123456789): a made-up value, not a SHA-256 digest',
    );
    // Eight counting digits are allowed (a real digest has them with probability ~1e-7); nine are not.
    expect(
      digestPlaceholder(`${sha('c').slice(0, 20)}3456789a${sha('d').slice(0, 36)}`),
    ).toBeNull();
  });
});

describe('referencePlaceholder', () => {
  it('finds template syntax and placeholder words, not ordinary names', () => {
    expect(referencePlaceholder('ghcr.io/${TEAM}/x')).toBe(
      'is a placeholder ("$"), not an image reference',
    );
    expect(referencePlaceholder('ghcr.io/team/{{name}}')).toBe(
      'is a placeholder ("{"), not an image reference',
    );
    expect(referencePlaceholder('ghcr.io/team/REPLACE-ME')).toBe(
      'is a placeholder ("REPLACE-ME"), not an image reference',
    );
    expect(referencePlaceholder('ghcr.io/team/xxx')).toBe(
      'is a placeholder ("xxx"), not an image reference',
    );
    for (const ok of ['ghcr.io/trellis-platform/orders-api', 'registry.internal:5000/todos-api'])
      expect(referencePlaceholder(ok), ok).toBeNull();
  });
});
