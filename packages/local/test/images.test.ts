import { describe, expect, it } from 'vitest';
import { containerfileProblems } from '../src/images/build.ts';
import { readOciArchive, runsAsNonRoot, sha256Digest, writeOciArchive } from '../src/images/oci.ts';
import { readTar, writeTar } from '../src/images/tar.ts';

const digest = `sha256:${'1a'.repeat(32)}`;

describe('tar', () => {
  it('reads back what it writes: names (long ones too), modes, types and contents', () => {
    const long = `${'d'.repeat(120)}/file.txt`;
    const tar = writeTar([
      { name: 'etc', dir: true },
      { name: 'etc/passwd', data: 'root:x:0:0::/:/sbin/nologin\n' },
      { name: 'usr/local/bin/node', data: Buffer.from([0x7f, 0x45]), mode: 0o755 },
      { name: long, data: 'x' },
    ]);
    expect(tar.length % 512).toBe(0);
    const entries = readTar(tar);
    expect(entries.map((e) => [e.name, e.type, e.mode.toString(8), e.uid])).toEqual([
      ['etc', 'dir', '755', 0],
      ['etc/passwd', 'file', '644', 0],
      ['usr/local/bin/node', 'file', '755', 0],
      [long, 'file', '644', 0],
    ]);
    expect(entries[1]?.data.toString()).toBe('root:x:0:0::/:/sbin/nologin\n');
    // Same input, same bytes: what makes a digest reproducible.
    expect(writeTar([{ name: 'a', data: 'b' }]).equals(writeTar([{ name: 'a', data: 'b' }]))).toBe(
      true,
    );
  });

  it('refuses a damaged header', () => {
    const tar = writeTar([{ name: 'a', data: 'b' }]);
    tar[0] = 'z'.charCodeAt(0);
    expect(() => readTar(tar)).toThrow('tar: bad header checksum at offset 0');
  });
});

describe('OCI archives', () => {
  it('checks an archive: the manifest digest is the sha256 of its blob, the user is read', () => {
    const { archive, digest: d } = writeOciArchive({
      files: [{ name: 'app/server.mjs', data: 'export {};\n' }],
      user: '65532:65532',
    });
    const image = readOciArchive(archive);
    expect(image.digest).toBe(d);
    expect(sha256Digest(image.manifestBytes)).toBe(d);
    expect(image.layer(0).map((e) => e.name)).toEqual(['app/server.mjs']);
    expect(runsAsNonRoot(image.config)).toBe(true);
  });

  it('refuses an archive whose blob does not hash to its descriptor', () => {
    const { archive } = writeOciArchive({ files: [{ name: 'a', data: 'one' }], user: '1' });
    const entries = readTar(archive);
    const layer = entries.find(
      (e) => e.data.toString().includes('one') && e.name.startsWith('blobs'),
    );
    if (!layer) throw new Error('no layer blob');
    // Same size, different content: only the hash can tell.
    const forged = writeTar(
      entries.map((e) =>
        e.type === 'dir'
          ? { name: e.name, dir: true }
          : {
              name: e.name,
              data: e === layer ? Buffer.from(e.data.toString().replace('one', 'two')) : e.data,
            },
      ),
    );
    expect(() => readOciArchive(forged)).toThrow(
      /^layer 0 sha256:[a-f0-9]{64}: its blob hashes to sha256:/,
    );
  });

  it('knows root from non-root users', () => {
    const cfg = (User?: string) => ({
      architecture: 'amd64',
      os: 'linux',
      config: User === undefined ? {} : { User },
      rootfs: { type: 'layers', diff_ids: [] },
    });
    expect(runsAsNonRoot(cfg('65532:65532'))).toBe(true);
    expect(runsAsNonRoot(cfg('nonroot'))).toBe(true);
    for (const u of ['0', '0:0', 'root', 'root:root', '', undefined])
      expect(runsAsNonRoot(cfg(u)), String(u)).toBe(false);
  });
});

describe('containerfileProblems', () => {
  const good = `# c\nFROM localhost/trellis/node-base@${digest}\nCOPY app/ /app/\nUSER 65532:65532\n`;

  it('accepts a Containerfile on the pinned base without RUN', () => {
    expect(containerfileProblems(good, digest)).toEqual([]);
  });

  it('refuses another base, a tag, a second stage and RUN', () => {
    expect(
      containerfileProblems(good.replace(digest, `sha256:${'2b'.repeat(32)}`), digest),
    ).toEqual([
      `must have one FROM localhost/trellis/node-base@${digest} (found localhost/trellis/node-base@sha256:${'2b'.repeat(32)})`,
    ]);
    expect(containerfileProblems('FROM node:24\nRUN npm ci\n', digest)).toEqual([
      `must have one FROM localhost/trellis/node-base@${digest} (found node:24)`,
      'has a RUN step; images are built without a container runtime',
    ]);
    expect(containerfileProblems(`${good}FROM scratch\n`, digest)).toHaveLength(1);
  });
});
