import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parsePolicyCandidates, parseShowSha256 } from '../src/toolchain/debian-batch.ts';
import {
  missingFiles,
  parsePrometheusVersion,
  prometheusLayout,
  prometheusRelease,
} from '../src/toolchain/prometheus.ts';

const dir = mkdtempSync(join(tmpdir(), 'trellis-prometheus-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('apt-cache output of several packages', () => {
  it('reads each candidate and leaves out packages without one', () => {
    const out = [
      'libjs-d3:',
      '  Installed: (none)',
      '  Candidate: 3.5.17-4',
      '  Version table:',
      '     3.5.17-4 500',
      'prometheus:',
      '  Installed: (none)',
      '  Candidate: 2.42.0+ds-5+deb12u1',
      'gone:',
      '  Installed: (none)',
      '  Candidate: (none)',
    ].join('\n');
    expect([...parsePolicyCandidates(out)]).toEqual([
      ['libjs-d3', '3.5.17-4'],
      ['prometheus', '2.42.0+ds-5+deb12u1'],
    ]);
  });

  it('keys each stanza sha256 by name=version', () => {
    const a = 'a'.repeat(64);
    const b = 'b'.repeat(64);
    const out = `Package: libjs-d3\nVersion: 3.5.17-4\nSHA256: ${a}\n\nPackage: x\nVersion: 1:2-3\nSHA256: ${b}\n`;
    expect(parseShowSha256(out)).toEqual(
      new Map([
        ['libjs-d3=3.5.17-4', a],
        ['x=1:2-3', b],
      ]),
    );
  });
});

describe('prometheus versions and layout', () => {
  it('parses the release from --version and from the Debian version', () => {
    expect(
      parsePrometheusVersion('promtool, version 2.42.0+ds (branch: debian/sid, revision: 2.42.0)'),
    ).toBe('2.42.0');
    expect(parsePrometheusVersion('garbage')).toBeNull();
    expect(prometheusRelease('2.42.0+ds-5+deb12u1')).toBe('2.42.0');
    expect(prometheusRelease('1:2.53.3+ds1-1')).toBe('2.53.3');
  });

  it('names every required file an install lacks, relative to the install dir', () => {
    const layout = prometheusLayout(join(dir, 'install'));
    const all = missingFiles(layout);
    expect(all).toContain('usr/bin/promtool');
    expect(all).toContain('usr/share/doc/prometheus/examples/console_libraries/prom.lib');
    expect(all).toContain('usr/share/prometheus/web/static/rickshaw/rickshaw.min.js');
    for (const f of all) {
      mkdirSync(dirname(join(layout.home, f)), { recursive: true });
      writeFileSync(join(layout.home, f), '');
    }
    expect(missingFiles(layout)).toEqual([]);
  });
});
