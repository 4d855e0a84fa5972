import { Client } from 'cassandra-driver';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  cassandraClientOptions,
  nodetool,
  type CassandraServer,
  cassandraConnectError as connectError,
} from '../src/harness/cassandra-client.ts';
import { startCassandra } from '../src/harness/cassandra.ts';
import { CertificateAuthority, writePemFiles, type PemFiles } from '../src/harness/tls.ts';
import { CASSANDRA_VERSION, cassandra } from '../src/toolchain/cassandra.ts';

// One real Cassandra 5.0 node with CQL and internode over TLS, client certificates required, and
// clients authenticated by their SPIFFE ID (MutualTlsAuthenticator) mapped to a role with ADD IDENTITY.
const ORDERS_ID = 'spiffe://trellis.test/ns/orders/sa/orders-api';
let dir = '';
let server: CassandraServer | undefined;
let node: PemFiles;
let client: PemFiles;
let rogue: PemFiles;
let stranger: PemFiles;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-cassandra-'));
  const ca = await CertificateAuthority.create({ commonName: 'Trellis test CA' });
  const tlsDir = join(dir, 'tls');
  node = writePemFiles(
    tlsDir,
    'cassandra',
    await ca.issue({
      commonName: 'cassandra',
      dns: ['localhost'],
      ips: ['127.0.0.1'],
      uris: ['spiffe://trellis.test/ns/data/sa/cassandra'],
    }),
    ca.rootPem,
  );
  client = writePemFiles(
    tlsDir,
    'orders-api',
    await ca.issue({ uris: [ORDERS_ID], usages: ['client'] }),
    ca.rootPem,
  );
  // Trusted CA, but an identity no role is mapped to.
  stranger = writePemFiles(
    tlsDir,
    'stranger',
    await ca.issue({ uris: ['spiffe://trellis.test/ns/other/sa/intruder'], usages: ['client'] }),
    ca.rootPem,
  );
  // Same identity, signed by a CA the node does not trust.
  const otherCa = await CertificateAuthority.create({ commonName: 'Someone else' });
  writeFileSync(join(tlsDir, 'other-ca.pem'), otherCa.rootPem);
  rogue = writePemFiles(
    tlsDir,
    'rogue',
    await otherCa.issue({
      uris: ['spiffe://trellis.test/ns/orders/sa/orders-api'],
      usages: ['client'],
    }),
    ca.rootPem,
  );

  const t0 = Date.now();
  await cassandra.ensure();
  const installMs = Date.now() - t0;
  server = await startCassandra({
    dir: join(dir, 'node'),
    clientTls: { keystore: node.keystore, truststore: node.truststore },
    internodeTls: { keystore: node.keystore, truststore: node.truststore },
    authenticator: {
      className: 'org.apache.cassandra.auth.MutualTlsAuthenticator',
      parameters: { validator_class_name: 'org.apache.cassandra.auth.SpiffeCertificateValidator' },
    },
    authorizer: 'CassandraAuthorizer',
    bootstrap: [
      "CREATE KEYSPACE orders WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
      'CREATE TABLE orders.by_id (id text PRIMARY KEY, total int)',
      'CREATE ROLE orders_api WITH LOGIN = true',
      'GRANT SELECT ON KEYSPACE orders TO orders_api',
      'GRANT MODIFY ON KEYSPACE orders TO orders_api',
      `ADD IDENTITY '${ORDERS_ID}' TO ROLE 'orders_api'`,
    ],
    probe: { cert: client.cert, key: client.key, ca: client.truststore },
  });
  console.info(
    `cassandra ${server.version}: ensure ${installMs} ms, ready in ${server.startupMs} ms ` +
      `(bootstrap start + restart; restart alone ${server.restartMs} ms) on ${server.contactPoint}`,
  );
});

afterAll(async () => {
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function live(): CassandraServer {
  if (!server) throw new Error('Cassandra did not start');
  return server;
}

describe('Cassandra 5.0 over client-certificate TLS', () => {
  it('runs the pinned version with CQL and internode listeners encrypted', () => {
    expect(live().version).toBe(CASSANDRA_VERSION);
    expect(live().tls).toBe(true);
    const log = readFileSync(live().logFile, 'utf8');
    expect(log).toMatch(/Starting listening for CQL clients on \S+ \(encrypted\)/);
    expect(log).toMatch(
      new RegExp(`Listening on address: \\(\\S+:${live().storagePort}\\).*encryption: encrypted`),
    );
  });

  it('answers nodetool over its local JMX port: one node, up and normal', async () => {
    expect(await nodetool(live(), ['status'])).toMatch(/^UN\s+127\.0\.0\.1/m);
  });

  it('writes a row and reads it back as the role its certificate identity maps to', async () => {
    const c = new Client(
      cassandraClientOptions(live(), { cert: client.cert, key: client.key, ca: client.truststore }),
    );
    try {
      await c.connect();
      const who = await c
        .execute('SELECT role FROM system_auth.identity_to_role WHERE identity = ?', [ORDERS_ID])
        .catch((e: unknown) => e);
      // Apps get no grant on system keyspaces: even reading the identity table is refused.
      expect(String(who)).toMatch(/Unauthorized|has no SELECT permission/);
      await c.execute('INSERT INTO orders.by_id (id, total) VALUES (?, ?)', ['o-1', 42], {
        prepare: true,
      });
      const rs = await c.execute('SELECT id, total FROM orders.by_id WHERE id = ?', ['o-1'], {
        prepare: true,
      });
      expect(rs.rows).toHaveLength(1);
      expect(rs.first().get('total')).toBe(42);
      // The role has data grants on `orders` only.
      await expect(
        c.execute(
          "CREATE KEYSPACE other WITH replication = {'class': 'SimpleStrategy', 'replication_factor': 1}",
        ),
      ).rejects.toThrow(/orders_api has no CREATE permission/);
    } finally {
      await c.shutdown();
    }
  });

  it('refuses a trusted certificate whose identity maps to no role', async () => {
    const opts = cassandraClientOptions(live(), {
      cert: stranger.cert,
      key: stranger.key,
      ca: client.truststore,
    });
    expect(await connectError(opts)).toMatch(
      /spiffe:\/\/trellis.test\/ns\/other\/sa\/intruder' not authorized/,
    );
  });

  it('refuses a plaintext client', async () => {
    // The node reads the plaintext STARTUP as a bad TLS record and resets the connection.
    expect(
      await connectError({ ...cassandraClientOptions(live()), sslOptions: undefined }),
    ).toMatch(/ECONNRESET|socket hang up|closed/i);
  });

  it('refuses a TLS client without a certificate', async () => {
    expect(await connectError(cassandraClientOptions(live(), { ca: client.truststore }))).toMatch(
      /alert certificate required|alert bad certificate/,
    );
  });

  it('refuses a client certificate from an untrusted CA', async () => {
    const opts = cassandraClientOptions(live(), {
      cert: rogue.cert,
      key: rogue.key,
      ca: client.truststore,
    });
    expect(await connectError(opts)).toMatch(
      /alert (internal error|certificate unknown|unknown ca|bad certificate)/,
    );
  });

  it('is verified by the client: a client trusting another CA refuses the node', async () => {
    const opts = cassandraClientOptions(live(), {
      cert: client.cert,
      key: client.key,
      ca: join(dir, 'tls', 'other-ca.pem'),
    });
    expect(await connectError(opts)).toMatch(/unable to verify|self.signed|certificate/);
  });

  it('serves internode traffic over TLS only, to peers with a trusted certificate', async () => {
    const handshake = (withCert: boolean): Promise<{ authorized: boolean; error?: string }> =>
      new Promise((resolve) => {
        const s = tlsConnect({
          host: live().host,
          port: live().storagePort,
          ca: readFileSync(node.truststore),
          ...(withCert ? { cert: readFileSync(node.cert), key: readFileSync(node.key) } : {}),
        });
        let authorized = false;
        const done = (error?: string): void => {
          clearTimeout(timer);
          s.destroy();
          resolve({ authorized, ...(error ? { error } : {}) });
        };
        // TLS 1.3 reports a missing client certificate after the client's handshake completes.
        const timer = setTimeout(() => done(), 1_500);
        s.on('secureConnect', () => {
          authorized = s.authorized;
        });
        s.on('error', (e) => done(e.message));
      });
    const good = await handshake(true);
    expect(good).toEqual({ authorized: true });
    const bad = await handshake(false);
    expect(bad.error).toMatch(/certificate required|alert|handshake|ECONNRESET/i);
  });
});

describe('startCassandra failures', () => {
  it('fails fast with the log tail when the node exits during startup', async () => {
    const bad = mkdtempSync(join(tmpdir(), 'trellis-cassandra-bad-'));
    try {
      const t0 = Date.now();
      const err = await startCassandra({ dir: bad, yaml: { no_such_option: true } }).catch(
        (e: unknown) => e as Error,
      );
      expect(String(err)).toMatch(/cassandra exited .* before Cassandra CQL/);
      // Cassandra's own words, from the log tail.
      expect(String(err)).toMatch(/Invalid yaml.*no_such_option/);
      expect(Date.now() - t0).toBeLessThan(60_000);
    } finally {
      rmSync(bad, { recursive: true, force: true });
    }
  });
});
