import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FetchError } from '../src/toolchain/errors.ts';
import {
  MAVEN_CENTRAL,
  classpathPom,
  downloadArtifact,
  mavenRegistryName,
  mavenRepo,
  mavenUrl,
  mirrorSettings,
  parseSha1File,
  resolveClasspath,
} from '../src/toolchain/maven.ts';

const savedRepo = process.env.TRELLIS_MAVEN_REPO;
const savedMvn = process.env.TRELLIS_MVN;
afterEach(() => {
  if (savedRepo === undefined) delete process.env.TRELLIS_MAVEN_REPO;
  else process.env.TRELLIS_MAVEN_REPO = savedRepo;
  if (savedMvn === undefined) delete process.env.TRELLIS_MVN;
  else process.env.TRELLIS_MVN = savedMvn;
});

describe('mavenUrl', () => {
  it('lays out a jar in Maven Central', () => {
    delete process.env.TRELLIS_MAVEN_REPO;
    expect(mavenUrl('org.apache.cassandra', 'cassandra-all', '5.0.9')).toBe(
      'https://repo1.maven.org/maven2/org/apache/cassandra/cassandra-all/5.0.9/cassandra-all-5.0.9.jar',
    );
  });

  it('adds the classifier and extension', () => {
    delete process.env.TRELLIS_MAVEN_REPO;
    expect(mavenUrl('org.keycloak', 'keycloak-quarkus-dist', '26.4.7', { ext: 'zip' })).toBe(
      `${MAVEN_CENTRAL}/org/keycloak/keycloak-quarkus-dist/26.4.7/keycloak-quarkus-dist-26.4.7.zip`,
    );
    expect(
      mavenUrl('org.apache.cassandra', 'apache-cassandra', '4.0-alpha2', {
        classifier: 'bin',
        ext: 'tar.gz',
      }),
    ).toBe(
      `${MAVEN_CENTRAL}/org/apache/cassandra/apache-cassandra/4.0-alpha2/apache-cassandra-4.0-alpha2-bin.tar.gz`,
    );
  });

  it('uses TRELLIS_MAVEN_REPO when set, without a trailing slash', () => {
    process.env.TRELLIS_MAVEN_REPO = 'http://127.0.0.1:8081/repository/central/';
    expect(mavenRepo()).toBe('http://127.0.0.1:8081/repository/central');
    expect(mavenUrl('a.b', 'c', '1')).toBe(
      'http://127.0.0.1:8081/repository/central/a/b/c/1/c-1.jar',
    );
    expect(mavenRegistryName()).toBe('Maven repository http://127.0.0.1:8081/repository/central');
  });

  it('names the bad field of bad coordinates', () => {
    expect(() => mavenUrl('org/evil', 'x', '1')).toThrow(/groupId "org\/evil"/);
    expect(() => mavenUrl('org.a', '', '1')).toThrow(/artifactId ""/);
    expect(() => mavenUrl('org.a', 'b', '1/../../etc')).toThrow(/version/);
    expect(() => mavenUrl('org.a', 'b', '..')).toThrow(/version/);
    expect(() => mavenUrl('org.a', 'b', '1', { classifier: 'x y' })).toThrow(/classifier "x y"/);
  });
});

describe('parseSha1File', () => {
  const hex = 'a'.repeat(40);
  it('reads bare and file-name forms', () => {
    expect(parseSha1File(`${hex}\n`)).toBe(hex);
    expect(parseSha1File(`${hex.toUpperCase()}  cassandra-all-5.0.9.jar\n`)).toBe(hex);
  });
  it('rejects anything else', () => {
    expect(() => parseSha1File('<html>not found</html>')).toThrow(/not a SHA-1 checksum file/);
    expect(() => parseSha1File('abc')).toThrow(/not a SHA-1/);
  });
});

describe('classpathPom', () => {
  it('lists each artefact as a dependency', () => {
    const pom = classpathPom('kafka', [
      { groupId: 'org.apache.kafka', artifactId: 'kafka_2.13', version: '4.3.1' },
      { groupId: 'x.y', artifactId: 'z', version: '1', classifier: 'linux-x86_64' },
    ]);
    expect(pom).toContain('<artifactId>kafka</artifactId>');
    expect(pom).toContain(
      '<dependency><groupId>org.apache.kafka</groupId><artifactId>kafka_2.13</artifactId><version>4.3.1</version></dependency>',
    );
    expect(pom).toContain('<classifier>linux-x86_64</classifier>');
    expect(pom).toContain('<packaging>pom</packaging>');
  });
  it('rejects an empty list, a bad name and bad coordinates', () => {
    expect(() => classpathPom('kafka', [])).toThrow(/no artefacts/);
    expect(() =>
      classpathPom('Bad Name', [{ groupId: 'a', artifactId: 'b', version: '1' }]),
    ).toThrow(/bad classpath name/);
    expect(() => classpathPom('k', [{ groupId: 'a<b', artifactId: 'b', version: '1' }])).toThrow(
      /groupId/,
    );
  });
});

describe('mirrorSettings', () => {
  it('mirrors every repository and escapes the URL', () => {
    const xml = mirrorSettings('http://h/r?a=1&b=2');
    expect(xml).toContain('<mirrorOf>*</mirrorOf>');
    expect(xml).toContain('<url>http://h/r?a=1&amp;b=2</url>');
  });
});

describe('resolveClasspath', () => {
  it('says clearly when Maven is missing', async () => {
    process.env.TRELLIS_MVN = '/nonexistent/mvn';
    const dir = mkdtempSync(join(tmpdir(), 'trellis-mvn-'));
    try {
      await expect(
        resolveClasspath({
          name: 'kafka',
          artifacts: [{ groupId: 'org.apache.kafka', artifactId: 'kafka_2.13', version: '4.3.1' }],
          into: join(dir, 'lib'),
          javaHome: '/usr',
        }),
      ).rejects.toThrow(/Maven \(mvn\) is not on PATH.*apt-get install -y maven/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// downloadArtifact against a real HTTP server on loopback standing in for a Maven mirror.
describe('downloadArtifact', () => {
  const body = Buffer.from('PK fake jar bytes');
  const good = createHash('sha1').update(body).digest('hex');
  let server: Server;
  let repo = '';
  let dir = '';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'trellis-dl-'));
    server = createServer((req, res) => {
      const url = req.url ?? '';
      if (url === '/g/a/1/a-1.jar' || url === '/g/bad/1/bad-1.jar') res.end(body);
      else if (url === '/g/a/1/a-1.jar.sha1') res.end(`${good}\n`);
      else if (url === '/g/bad/1/bad-1.jar.sha1') res.end(`${'0'.repeat(40)}\n`);
      else {
        res.statusCode = 404;
        res.end('not found');
      }
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const addr = server.address();
    repo = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(dir, { recursive: true, force: true });
  });

  it('downloads and verifies the published SHA-1', async () => {
    process.env.TRELLIS_MAVEN_REPO = repo;
    const dest = join(dir, 'a-1.jar');
    await downloadArtifact({ groupId: 'g', artifactId: 'a', version: '1' }, dest);
    expect(readFileSync(dest)).toEqual(body);
  });

  it('fails with a FetchError on a checksum mismatch and keeps no file', async () => {
    process.env.TRELLIS_MAVEN_REPO = repo;
    const dest = join(dir, 'bad-1.jar');
    const err = await downloadArtifact(
      { groupId: 'g', artifactId: 'bad', version: '1' },
      dest,
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect((err as Error).message).toMatch(
      /could not fetch g:bad:1 from Maven repository http:.*SHA-1 mismatch/,
    );
    expect(existsSync(dest)).toBe(false);
  });

  it('fails with a FetchError naming the artefact when it is missing', async () => {
    process.env.TRELLIS_MAVEN_REPO = repo;
    const err = await downloadArtifact(
      { groupId: 'g', artifactId: 'missing', version: '1' },
      join(dir, 'm.jar'),
    ).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FetchError);
    expect((err as Error).message).toMatch(/g:missing:1 \(\.sha1\).*HTTP 404/);
  });
});
