/** The edge certificate read at each handshake (ADR 0032), or once, in the compiled nginx config. */
import { describe, expect, it } from 'vitest';
import { compileNginxHttp } from '../src/index.ts';
import { referenceBound } from './fixtures.ts';

const base = {
  listen: { address: '127.0.0.1', port: 8443 },
  upstream: { address: '127.0.0.1', port: 15443 },
};
const files = { certificate: '/run/t/..data/tls.crt', key: '/run/t/tls.key' };

/** Every `ssl_certificate` and `ssl_certificate_key` line, trimmed. */
const certLines = (conf: string): string[] =>
  conf
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('ssl_certificate'));

describe('the edge certificate in the compiled nginx config', () => {
  it('names the files in every server by default (read at start and at each reload)', () => {
    const conf = compileNginxHttp(referenceBound(), { ...base, tls: files });
    const lines = certLines(conf);
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(new Set(lines)).toEqual(
      new Set(['ssl_certificate /run/t/..data/tls.crt;', 'ssl_certificate_key /run/t/tls.key;']),
    );
    expect(conf).not.toContain('$trellis_edge_certificate');
  });

  it('puts the paths in variables with perHandshake, so each handshake reads the files', () => {
    const conf = compileNginxHttp(referenceBound(), {
      ...base,
      tls: { ...files, perHandshake: true },
    });
    const lines = certLines(conf);
    expect(lines.length).toBeGreaterThanOrEqual(4);
    expect(new Set(lines)).toEqual(
      new Set([
        'ssl_certificate $trellis_edge_certificate;',
        'ssl_certificate_key $trellis_edge_certificate_key;',
      ]),
    );
    expect(conf).toContain(
      'map $ssl_server_name $trellis_edge_certificate {\n  default "/run/t/..data/tls.crt";\n}',
    );
    expect(conf).toContain(
      'map $ssl_server_name $trellis_edge_certificate_key {\n  default "/run/t/tls.key";\n}',
    );
  });

  it('refuses a path nginx would not read as one file name, naming the field', () => {
    for (const [tls, field] of [
      [{ ...files, key: 'tls.key' }, 'tls.key'],
      [{ ...files, certificate: '/run/t/my cert.pem' }, 'tls.certificate'],
      [{ ...files, certificate: '/run/$t/cert.pem' }, 'tls.certificate'],
      [{ ...files, key: '/run/t/k";ey' }, 'tls.key'],
    ] as const)
      expect(() =>
        compileNginxHttp(referenceBound(), { ...base, tls: { ...tls, perHandshake: true } }),
      ).toThrow(new RegExp(`^${field.replace('.', '\\.')}: an absolute path`));
  });
});
