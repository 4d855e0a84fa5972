import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../src/toolchain/exec.ts';
import { ensurePrometheus, missingFiles, prometheus } from '../src/toolchain/prometheus.ts';

describe('prometheus (Debian package, real binaries)', () => {
  it('installs prometheus, promtool, the console libraries and web assets, and doctor sees it', async () => {
    const layout = await ensurePrometheus();
    expect(missingFiles(layout)).toEqual([]);
    expect(await run(layout.promtool, ['--version'], { what: 'promtool' })).toMatch(
      /version 2\.42\.0/,
    );
    // the console library loads rickshaw from the unpacked libjs package
    expect(readFileSync(join(layout.consoleLibraries, 'prom.lib'), 'utf8')).toContain(
      '/classic/static/rickshaw/rickshaw.min.js',
    );
    const check = await prometheus.check();
    expect(check).toMatchObject({ found: '2.42.0', runs: true, location: layout.prometheus });
    expect(check.problem).toBeUndefined();
  });
});
