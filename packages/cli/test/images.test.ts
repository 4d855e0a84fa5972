import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { images } from '../src/verbs/images.ts';

let err = '';
let out = '';

beforeEach(() => {
  err = '';
  out = '';
  vi.spyOn(process.stderr, 'write').mockImplementation((s) => {
    err += String(s);
    return true;
  });
  vi.spyOn(process.stdout, 'write').mockImplementation((s) => {
    out += String(s);
    return true;
  });
});

afterEach(() => {
  vi.restoreAllMocks();
});

describe('./trellis images usage', () => {
  it('prints its usage with --help and builds nothing', async () => {
    expect(await images(['--help'])).toBe(0);
    expect(out).toContain(
      './trellis images [service...] [--out DIR] [--update-base [--node VERSION]]',
    );
  });

  it('exits 2 naming the bad argument, before building anything', async () => {
    expect(await images(['--bogus'])).toBe(2);
    expect(err).toContain('trellis images: unknown option --bogus');
    expect(await images(['payments'])).toBe(2);
    expect(err).toContain(
      'trellis images: unknown service payments (have ledger, orders-api, orders-writer)',
    );
    expect(await images(['--node', '24.1.0'])).toBe(2);
    expect(err).toContain('trellis images: --node goes with --update-base');
    expect(await images(['--update-base', '--node', 'latest'])).toBe(2);
    expect(err).toContain('trellis images: --node must be a version x.y.z, got latest');
    expect(await images(['--out'])).toBe(2);
    expect(err).toContain('trellis images: --out needs a value');
  });
});
