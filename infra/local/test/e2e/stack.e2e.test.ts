// The whole local stack, for real: the global setup ran `pulumi up --stack e2e` of infra/local (Cassandra,
// Kafka, Keycloak, Envoy sidecars, nginx, orders-api, ledger, all from trellis.yaml). Each describe block is
// one promise of the local-stack issue; the last one destroys the stack and checks nothing is left.
import { Client } from 'cassandra-driver';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import kafkajs from 'kafkajs';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CertificateAuthority,
  cassandraClientOptions,
  kafkaClientConfig,
  writePemFiles,
} from '@trellis/local/harness';
import type { AuditRecord } from '@trellis/cli/audit-trail';
import { runPulumi, selectStack } from '@trellis/cli/stack';
import type { BoundModel } from '@trellis/policy';
import { runLoadOnStack } from '@trellis/load-tests';
import { podLeftovers } from '@trellis/local/pods';
import { readState } from '@trellis/local/supervisor';
import { E2E_STACK } from './global-setup.ts';
import {
  call,
  decodeJwt,
  envoyCounter,
  foreignJwt,
  freshToken,
  getAs,
  outputs,
  pkiFiles,
  principals,
  realmToken,
  secretOutputs,
  tamperedJwt,
  token,
  unsignedJwt,
} from './support.ts';

const { Kafka } = kafkajs;
/** The repository's root, where `./trellis` is. */
const repoRoot = join(import.meta.dirname, '..', '..', '..', '..');
const order = JSON.stringify({ sku: 'e2e-1', quantity: 2 });
const bearer = (t: string): Record<string, string> => ({ authorization: `Bearer ${t}` });

async function post(t: string | null): Promise<{ status: number; body: string }> {
  return call(`${outputs().ingressUrl}/orders`, {
    method: 'POST',
    body: order,
    headers: t === null ? {} : bearer(t),
  });
}

function cassandraAs(identity: string): Client {
  const c = outputs().cassandra;
  return new Client(
    cassandraClientOptions(
      {
        contactPoint: `${c.host}:${c.port}`,
        localDataCenter: c.localDataCenter,
        tls: true,
        host: c.host,
      },
      pkiFiles(identity),
    ),
  );
}

async function until<T>(
  f: () => Promise<T | null | undefined>,
  ms: number,
  what: string,
): Promise<T> {
  const deadline = Date.now() + ms;
  let last = '';
  for (;;) {
    try {
      const v = await f();
      if (v) return v;
    } catch (err) {
      last = (err as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${ms} ms ${last}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** GET the order until the batch writer has stored it (404 until then, docs/services.md). */
async function readWhenWritten(id: string, t: string): Promise<{ status: number; body: string }> {
  return until(
    async () => {
      const r = await call(`${outputs().ingressUrl}/orders/${id}`, { headers: bearer(t) });
      if (r.status === 404) return null;
      return r;
    },
    30_000,
    `order ${id} written by orders-writer`,
  );
}

describe('a user with orders:write, through nginx and two sidecars', () => {
  it('POST /orders → 202, orders-writer stores it, GET returns it, and the ledger projection appears', async () => {
    const alice = await token('alice');
    const created = await post(alice);
    expect(created.status, created.body).toBe(202);
    const body = JSON.parse(created.body) as { id: string; subject: string; sku: string };
    expect(body.sku).toBe('e2e-1');
    expect(body.subject).toBe(decodeJwt(alice).payload.sub);

    const got = await readWhenWritten(body.id, alice);
    expect(got.status, got.body).toBe(200);
    expect(JSON.parse(got.body)).toMatchObject({ id: body.id, sku: 'e2e-1', quantity: 2 });

    const admin = cassandraAs('platform-admin');
    try {
      const row = await until(
        async () =>
          (
            await admin.execute(
              'SELECT * FROM ledger.order_entries WHERE order_id = ?',
              [body.id],
              { prepare: true },
            )
          ).first(),
        30_000,
        'the ledger projection',
      );
      expect(String(row.get('order_id'))).toBe(body.id);
    } finally {
      await admin.shutdown();
    }
  });
});

/** `./trellis audit --stack e2e --request-id <id> --json`, run as a user would, parsed. */
function auditTrail(requestId: string): AuditRecord[] {
  const out = execFileSync(
    join(repoRoot, 'trellis'),
    ['audit', '--stack', E2E_STACK, '--request-id', requestId, '--json'],
    { cwd: repoRoot, encoding: 'utf8', timeout: 60_000 },
  );
  return out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as AuditRecord);
}

const loose = (s: string | undefined) => (s ?? '').toLowerCase().replaceAll('_', '-');
/** A produce to `topic` by the workload whose service account is `sa`, joined to the request by time. */
const kafkaProduce =
  (sa: string, topic: string) =>
  (r: AuditRecord): boolean =>
    r.source === 'kafka' &&
    r.correlated === true &&
    loose(r.identity).endsWith(`/sa/${sa}`) &&
    (r.action ?? '').startsWith(`WRITE Topic:LITERAL:${topic}`);
/** A write (DML) by Cassandra role `role` to a table whose `keyspace.table` contains `table`. */
const cassandraDml =
  (role: string, table: string) =>
  (r: AuditRecord): boolean =>
    r.source === 'cassandra' &&
    loose(r.identity).includes(role) &&
    (r.action ?? '').includes(table) &&
    r.reason === 'DML';

describe('one audit trail (./trellis audit)', () => {
  it("alice's POST: edge, ingress, sidecar, orders-api's produce, the writer's Cassandra write and event, the ledger's write, each with its identity", async () => {
    const alice = await token('alice');
    const sub = decodeJwt(alice).payload.sub as string;
    const created = await call(`${outputs().ingressUrl}/orders`, {
      method: 'POST',
      body: order,
      headers: bearer(alice),
    });
    expect(created.status, created.body).toBe(202);
    const requestId = String(created.headers['x-request-id']);
    expect(requestId).toMatch(/^[0-9a-f]{32}$/);
    const id = (JSON.parse(created.body) as { id: string }).id;
    await readWhenWritten(id, alice);
    const expected: [string, (r: AuditRecord) => boolean][] = [
      ['nginx 202', (r) => r.source === 'nginx' && r.status === 202 && r.requestId === requestId],
      ['the ingress sidecar', (r) => r.component === 'ingress-sidecar' && r.status === 202],
      [
        "orders-api's sidecar: allowed, caller the ingress, alice's subject",
        (r) =>
          r.component === 'orders-api-sidecar' &&
          r.decision === 'allow' &&
          r.identity === outputs().sidecars.ingress?.spiffeId &&
          r.subject === sub &&
          r.route === 'create-order',
      ],
      ['orders-api answered 202', (r) => r.component === 'orders-api' && r.status === 202],
      [
        "orders-api's produce to the intake topic, as orders-api",
        kafkaProduce('orders-api', 'orders.intake.v1'),
      ],
      [
        "the writer's Cassandra write to orders, as its role",
        cassandraDml('orders-writer', 'orders.orders'),
      ],
      [
        'the writer stored the order for alice',
        (r) => r.component === 'orders-writer' && r.subject === sub,
      ],
      [
        "the writer's order.created event, as orders-writer",
        kafkaProduce('orders-writer', 'orders.v1'),
      ],
      ["the ledger's Cassandra write, as its role", cassandraDml('ledger', 'ledger.')],
      ['the ledger projected it for alice', (r) => r.component === 'ledger' && r.subject === sub],
    ];
    // Envoy writes its access log to file in batches (every few seconds), so the trail fills up over
    // time: wait (bounded) until every hop has its line, then check each with a message naming it.
    let trail: AuditRecord[] = [];
    await until(
      async () => {
        trail = auditTrail(requestId);
        return expected.every(([, p]) => trail.some(p)) ? trail : null;
      },
      30_000,
      `every hop of request ${requestId} in the audit trail`,
    ).catch(() => undefined);
    for (const [what, p] of expected)
      expect(trail.some(p), `${what} in\n${trail.map((r) => JSON.stringify(r)).join('\n')}`).toBe(
        true,
      );
    // Nothing of another request: every record with a request id has this one.
    expect(trail.filter((r) => r.requestId !== undefined && r.requestId !== requestId)).toEqual([]);
  });

  it("bob's refused POST is a deny with its reason, and never reaches orders-api", async () => {
    const bob = await token('bob');
    const refused = await call(`${outputs().ingressUrl}/orders`, {
      method: 'POST',
      body: order,
      headers: bearer(bob),
    });
    expect(refused.status).toBe(403);
    const requestId = String(refused.headers['x-request-id']);
    const trail = await until(
      async () => {
        const t = auditTrail(requestId);
        return t.some((r) => r.decision === 'deny') ? t : null;
      },
      15_000,
      `the deny of request ${requestId}`,
    );
    const deny = trail.find((r) => r.decision === 'deny');
    expect(deny).toMatchObject({
      component: 'orders-api-sidecar',
      status: 403,
      subject: decodeJwt(bob).payload.sub,
    });
    expect(deny?.reason).toMatch(/^rbac_access_denied/);
    expect(trail.filter((r) => r.component === 'orders-api' || r.source === 'cassandra')).toEqual(
      [],
    );
  });
});

/** A trace as Jaeger's query API (`/api/traces/<id>`) returns it. */
interface JaegerTrace {
  traceID: string;
  spans: {
    spanID: string;
    operationName: string;
    processID: string;
    references: { refType: string; traceID: string; spanID: string }[];
  }[];
  processes: Record<string, { serviceName: string }>;
}

describe('one trace from the edge to the ledger (Jaeger)', () => {
  it("alice's POST is one trace whose id is the request id: edge, orders-api, the writer, the ledger, joined through Kafka's headers", async () => {
    const jaeger = outputs().tracing?.jaegerUrl;
    expect(jaeger, 'the stack output tracing.jaegerUrl').toBeTruthy();
    const alice = await token('alice');
    const created = await call(`${outputs().ingressUrl}/orders`, {
      method: 'POST',
      body: order,
      headers: bearer(alice),
    });
    expect(created.status, created.body).toBe(202);
    const requestId = String(created.headers['x-request-id']);
    await readWhenWritten((JSON.parse(created.body) as { id: string }).id, alice);
    const want = ['ingress-sidecar', 'orders-api-sidecar', 'orders-api', 'orders-writer', 'ledger'];
    let trace: JaegerTrace | undefined;
    let services = new Set<string>();
    // Spans arrive in batches (each exporter's batch delay, the collector's batch processor).
    await until(
      async () => {
        const r = await call(`${jaeger}/api/traces/${requestId}`);
        if (r.status !== 200) return null;
        trace = (JSON.parse(r.body) as { data: JaegerTrace[] }).data[0];
        services = new Set(Object.values(trace?.processes ?? {}).map((p) => p.serviceName));
        return want.every((w) => services.has(w)) ? trace : null;
      },
      45_000,
      `the trace ${requestId} with spans of ${want.join(', ')}`,
    ).catch(() => undefined);
    expect([...services].sort()).toEqual(expect.arrayContaining(want));
    const t = trace as JaegerTrace;
    expect(t.traceID).toBe(requestId);
    // One tree: every span's parent is in the trace, except the edge's, whose parent is the span id
    // nginx derived from the request id (nginx exports no span of its own: ADR 0023).
    const ids = new Set(t.spans.map((s) => s.spanID));
    const orphans = t.spans.filter((s) =>
      s.references.some((r) => r.refType === 'CHILD_OF' && !ids.has(r.spanID)),
    );
    expect(
      orphans.map((s) => t.processes[s.processID]?.serviceName),
      'spans whose parent is not in the trace',
    ).toEqual(['ingress-sidecar']);
    expect(orphans[0]?.references[0]?.spanID).toBe(requestId.slice(16));
    expect(t.spans.every((s) => s.references.every((r) => r.traceID === requestId))).toBe(true);
  });
});

describe('Idempotency-Key through nginx and both sidecars', () => {
  it('a retried POST with the same key returns the same order; another body under it is refused', async () => {
    const alice = await token('alice');
    const key = `e2e-${Date.now()}-${Math.random().toString(36).slice(2)}`;
    const send = (body: string) =>
      call(`${outputs().ingressUrl}/orders`, {
        method: 'POST',
        body,
        headers: { ...bearer(alice), 'idempotency-key': `"${key}"` },
      });
    const first = await send(order);
    expect(first.status, first.body).toBe(202);
    const accepted = JSON.parse(first.body) as { id: string };
    // Once stored, a retry is answered from the stored order: the same order, not a second one. The
    // header reached the app through every hop, or the retry would have had a new id.
    const stored = await readWhenWritten(accepted.id, alice);
    const retry = await send(order);
    expect(retry.status, retry.body).toBe(202);
    expect(JSON.parse(retry.body)).toEqual(JSON.parse(stored.body));
    expect(JSON.parse(retry.body)).toMatchObject({ id: accepted.id });
    const other = await send(JSON.stringify({ sku: 'e2e-1', quantity: 3 }));
    expect(other.status, other.body).toBe(422);
  });
});

/**
 * A real, correctly signed token with a 1 s lifespan, minted when the edge-token tests start and checked
 * only after the rotation, supervision and k6 tests: Envoy's jwt_authn allows 60 s of clock skew
 * (clock_skew_seconds default), so checking it at once would idle the suite for a minute.
 */
let expiring: Promise<string> | undefined;
const expiringToken = (): Promise<string> =>
  (expiring ??= realmToken(
    'e2e-expiring',
    ['basic', 'keycloak-audience', 'orders:read', 'orders:write'],
    1,
  ));

describe('tokens at the edge', () => {
  beforeAll(async () => {
    await expiringToken();
  });

  it('authenticates the short-lived token while it is within its clock skew (its 401 comes later, below)', async () => {
    // jwt_authn accepts it: the request reaches RBAC, which refuses this test client (the model names
    // no such caller) with 403. After expiry + skew the same token stops at jwt_authn with 401.
    const r = await post(await expiringToken());
    expect(r.status, r.body).toBe(403);
    expect(r.body).toContain('RBAC: access denied');
  });

  it('refuses a request without a token with 401', async () => {
    expect((await post(null)).status).toBe(401);
  });

  it('refuses alg:none, a tampered signature and an unknown signing key with 401', async () => {
    const claims = decodeJwt(await token('alice')).payload;
    expect((await post(unsignedJwt(claims))).status).toBe(401);
    expect((await post(tamperedJwt(await token('alice'), { sub: 'mallory' }))).status).toBe(401);
    expect((await post(foreignJwt(claims))).status).toBe(401);
  });

  it('refuses a token from another issuer with 401', async () => {
    const claims = decodeJwt(await token('alice')).payload;
    expect(
      (await post(foreignJwt({ ...claims, iss: 'https://evil.example/realms/trellis' }))).status,
    ).toBe(401);
  });

  it('refuses a real, correctly signed token for another audience with 401', async () => {
    const t = await realmToken('e2e-wrong-audience', ['basic', 'orders:read', 'orders:write']);
    expect([decodeJwt(t).payload.aud ?? []].flat()).not.toContain('trellis-api');
    expect((await post(t)).status).toBe(401);
  });

  it('gives 403 to a valid token without the scope, and lets the agent read but not write', async () => {
    expect((await post(await token('bob'))).status).toBe(403);
    const bot = await token('reporting-bot');
    expect((await post(bot)).status).toBe(403);
    const mine = JSON.parse((await post(await token('alice'))).body) as { id: string };
    const read = await readWhenWritten(mine.id, bot);
    expect(read.status, read.body).toBe(200);
  });
});

describe('the orders-api sidecar, called directly', () => {
  // Where the model is bound to listen: the pod address when orders-api runs in a pod.
  const inbound = (): string => {
    const ep = (secretOutputs() as { model: BoundModel }).model.binding.workloads['orders-api']
      ?.inbound.http;
    if (ep === undefined) throw new Error('orders-api has no inbound http listener');
    return `https://${ep.address}:${ep.port}`;
  };

  it('refuses plaintext', async () => {
    const url = inbound().replace('https:', 'http:');
    await expect(call(`${url}/orders/x`)).rejects.toThrow();
  });

  it('refuses a client without a certificate, and one from another CA', async () => {
    await expect(call(`${inbound()}/orders/x`, { spiffeServer: true })).rejects.toThrow();
    // Another CA issuing the very SPIFFE ID the policy allows (the ingress's): only the CA is wrong.
    const alien = await CertificateAuthority.create({ commonName: 'not the mesh CA' });
    const issued = await alien.issue({ uris: [outputs().sidecars.ingress?.spiffeId ?? ''] });
    const files = writePemFiles(
      mkdtempSync(join(tmpdir(), 'e2e-alien-')),
      'ingress',
      issued,
      alien.rootPem,
    );
    await expect(
      call(`${inbound()}/orders/x`, {
        spiffeServer: true,
        client: { cert: files.cert, key: files.key },
      }),
    ).rejects.toThrow();
  });

  it('refuses a mesh identity the policy does not allow (ledger) at the handshake, and lets the ingress through', async () => {
    const alice = await token('alice');
    // The inbound listener matches the caller's SAN against the callers the model allows, so ledger's
    // valid mesh certificate is rejected with TLS alert 46 (certificate unknown) before any HTTP.
    await expect(
      call(`${inbound()}/orders`, {
        method: 'POST',
        body: order,
        headers: bearer(alice),
        spiffeServer: true,
        client: pkiFiles('ledger'),
      }),
    ).rejects.toThrow(/certificate unknown/);
    const asIngress = await call(`${inbound()}/orders`, {
      method: 'POST',
      body: order,
      headers: bearer(alice),
      spiffeServer: true,
      client: pkiFiles('ingress'),
    });
    expect(asIngress.status, asIngress.body).toBe(202);
  });
});

describe('the data layer enforces the same identities', () => {
  it('refuses a CQL client without a certificate', async () => {
    const c = outputs().cassandra;
    const client = new Client(
      cassandraClientOptions(
        {
          contactPoint: `${c.host}:${c.port}`,
          localDataCenter: c.localDataCenter,
          tls: true,
          host: c.host,
        },
        { ca: pkiFiles('ledger').ca },
      ),
    );
    await expect(client.connect()).rejects.toThrow();
    await client.shutdown();
  });

  it('refuses the ledger identity on keyspace orders', async () => {
    const client = cassandraAs('ledger');
    try {
      await expect(client.execute('SELECT * FROM orders.orders LIMIT 1')).rejects.toThrow(
        /permission|Unauthorized/i,
      );
    } finally {
      await client.shutdown();
    }
  });

  it('lets orders-api read keyspace orders but not write it: only orders-writer writes orders', async () => {
    const client = cassandraAs('orders-api');
    try {
      await client.execute('SELECT id FROM orders.orders LIMIT 1');
      await expect(
        client.execute(
          'INSERT INTO orders.orders (id, sku, quantity, subject) VALUES (uuid(), ?, 1, ?)',
          ['forged', 'mallory'],
          { prepare: true },
        ),
      ).rejects.toThrow(/permission|Unauthorized/i);
    } finally {
      await client.shutdown();
    }
  });

  it.each(['orders-api', 'ledger'])(
    "refuses a Kafka producer with %s's identity on orders.v1: order.created comes only from orders-writer",
    async (identity) => {
      const k = outputs().kafka;
      const kafka = new Kafka(
        kafkaClientConfig(
          { bootstrap: k.bootstrap, tls: true, host: '127.0.0.1' },
          pkiFiles(identity),
          `e2e-${identity}`,
        ),
      );
      const producer = kafka.producer({ allowAutoTopicCreation: false });
      await producer.connect();
      try {
        await expect(
          producer.send({
            topic: 'orders.v1',
            acks: -1,
            messages: [{ key: 'x', value: 'forged' }],
          }),
        ).rejects.toThrow(/authoriz/i);
      } finally {
        await producer.disconnect();
      }
    },
  );
});

describe('certificate rotation', () => {
  it('rotates every workload certificate while requests flow, with zero failed requests', async () => {
    const o = outputs();
    const alice = await token('alice');
    const id = (JSON.parse((await post(alice)).body) as { id: string }).id;
    await readWhenWritten(id, alice);
    const before = await Promise.all(
      Object.keys(o.sidecars).map((w) => envoyCounter(w, /ssl_context_update_by_sds/)),
    );
    let stop = false;
    const statuses: number[] = [];
    const load = (async () => {
      // Bounded: at most 3,000 requests, and it stops when the rotation is done.
      for (let i = 0; i < 3_000 && !stop; i++) {
        const r = await call(`${o.ingressUrl}/orders/${id}`, { headers: bearer(alice) }).catch(
          () => ({ status: 0 }),
        );
        statuses.push(r.status);
      }
    })();
    const { bin, env, common } = await selectStack(E2E_STACK);
    const up = await runPulumi(
      bin,
      ['up', '--yes', '--skip-preview', ...common, '--config', 'trellis-local:rotation=1'],
      env,
    );
    stop = true;
    await load;
    expect(up.code).toBe(0);
    expect(statuses.length).toBeGreaterThan(10);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const after = await Promise.all(
      Object.keys(o.sidecars).map((w) => envoyCounter(w, /ssl_context_update_by_sds/)),
    );
    after.forEach((n, i) => expect(n).toBeGreaterThan(before[i] ?? 0));
  });
});

/**
 * Issue 16's fault run: a steady keyed write load through the ingress while orders-api and then
 * orders-writer are killed with SIGKILL (their supervisors restart them, as a kubelet would). A POST
 * that is not acknowledged (202) is retried with the same Idempotency-Key, as a client should.
 * Afterwards every acknowledged order is in Cassandra once, and in the ledger projection once. Bounded:
 * at most WRITE_MS of load with FAULT_CLIENTS clients, and retries of each key until RETRY_MS.
 */
describe('acknowledged orders survive kill -9 of orders-api, then orders-writer, then the ledger', () => {
  const WRITE_MS = 10_000;
  const RETRY_MS = 60_000;
  const FAULT_CLIENTS = 3;
  const stateOf = (w: string): string =>
    join(outputs().trustBundle, '..', '..', 'run', w, 'supervisor.json');

  async function killAndAwaitRestart(w: string): Promise<number> {
    const before = readState(stateOf(w));
    expect(before?.childPid, `${w} supervisor state`).toBeGreaterThan(1);
    const t0 = Date.now();
    process.kill(before?.childPid ?? 0, 'SIGKILL');
    await until(
      async () => {
        const s = readState(stateOf(w));
        return s && s.status === 'running' && s.childPid !== before?.childPid ? s : null;
      },
      30_000,
      `${w} restarted`,
    );
    await until(
      async () => (await getAs(w, `${outputs().services[w]?.url}/readyz`)).status === 200,
      60_000,
      `${w} ready again`,
    );
    return Date.now() - t0;
  }

  it('0 lost, 0 duplicated; retries with the same key are one order', async () => {
    const alice = await token('alice');
    const run = `fault-${Date.now().toString(36)}`;
    const acked = new Map<string, string>(); // key -> order id
    const statuses = new Map<number, number>();
    let requests = 0;
    const postKey = async (key: string): Promise<void> => {
      requests++;
      const r = await call(`${outputs().ingressUrl}/orders`, {
        method: 'POST',
        body: JSON.stringify({ sku: run, quantity: 1, customerRef: key }),
        headers: { ...bearer(alice), 'idempotency-key': `"${key}"` },
      }).catch(() => ({ status: 0, body: '' }));
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      if (r.status === 202) acked.set(key, (JSON.parse(r.body) as { id: string }).id);
    };
    const keys: string[] = [];
    let stop = false;
    const clients = Array.from({ length: FAULT_CLIENTS }, async (_, c) => {
      for (let i = 0; !stop && i < 2_000; i++) {
        const key = `${run}-${c}-${i}`;
        keys.push(key);
        await postKey(key);
      }
    });
    // The faults run beside the load: orders-api first, then (once it is back) orders-writer, whose
    // backlog of acknowledged orders grows until its replacement joins the consumer group, then the
    // ledger, which resumes its projection from its group's committed offset.
    const faults = (async () => {
      await new Promise((r) => setTimeout(r, 3_000));
      const api = await killAndAwaitRestart('orders-api');
      const writer = await killAndAwaitRestart('orders-writer');
      return { api, writer, ledger: await killAndAwaitRestart('ledger') };
    })();
    await new Promise((r) => setTimeout(r, WRITE_MS));
    stop = true;
    await Promise.all(clients);
    const { api: apiRecovery, writer: writerRecovery, ledger: ledgerRecovery } = await faults;
    // A client retries what was not acknowledged, with the same key (bounded).
    const deadline = Date.now() + RETRY_MS;
    for (let pending = keys.filter((k) => !acked.has(k)); pending.length > 0;) {
      if (Date.now() > deadline) break;
      for (const k of pending) await postKey(k);
      pending = keys.filter((k) => !acked.has(k));
    }
    expect(
      keys.filter((k) => !acked.has(k)),
      'keys never acknowledged',
    ).toEqual([]);

    const admin = cassandraAs('platform-admin');
    try {
      const ids = [...acked.values()];
      // Every acknowledged order is stored (the writer drains what was queued before each kill).
      const stored = await until(
        async () => {
          const rows = (
            await admin.execute(
              'SELECT id, customer_ref FROM orders.orders WHERE sku = ? ALLOW FILTERING',
              [run],
              { prepare: true, fetchSize: 10_000 },
            )
          ).rows;
          return rows.length >= ids.length ? rows : null;
        },
        60_000,
        'every acknowledged order in Cassandra',
      );
      const byKey = new Map<string, number>();
      for (const row of stored) {
        const k = String(row.get('customer_ref'));
        byKey.set(k, (byKey.get(k) ?? 0) + 1);
      }
      const duplicated = [...byKey.values()].filter((n) => n > 1).length;
      const lost = ids.filter((id) => !stored.some((row) => String(row.get('id')) === id)).length;
      const projected = await until(
        async () => {
          let n = 0;
          for (let i = 0; i < ids.length; i += 100) {
            const chunk = ids.slice(i, i + 100);
            const rs = await admin.execute(
              `SELECT order_id FROM ledger.order_entries WHERE order_id IN (${chunk.map(() => '?').join(',')})`,
              chunk,
              { prepare: true },
            );
            n += rs.rows.length;
          }
          return n === ids.length ? n : null;
        },
        60_000,
        'every acknowledged order in the ledger projection',
      );
      process.stdout.write(
        `fault run ${run}: ${requests} requests (${[...statuses].map(([s, n]) => `${s}: ${n}`).join(', ')}), ` +
          `${acked.size} acknowledged, ${lost} lost, ${duplicated} duplicated, ${projected} projected; ` +
          `orders-api back in ${apiRecovery} ms, orders-writer back in ${writerRecovery} ms, ledger back in ${ledgerRecovery} ms\n`,
      );
      expect(acked.size).toBeGreaterThan(20);
      expect(stored.length).toBe(ids.length);
      expect(lost).toBe(0);
      expect(duplicated).toBe(0);
      // Only the outage gives errors, and only ones a client retries: no 4xx, no 500.
      expect([...statuses.keys()].filter((s) => s !== 202 && s !== 0 && s < 502)).toEqual([]);
    } finally {
      await admin.shutdown();
    }
  });
});

describe('Prometheus, the metrics scraper (ADR 0020)', () => {
  const prometheus = () => {
    const p = outputs().prometheus;
    if (p === undefined) throw new Error('the stack exports no prometheus output');
    return p;
  };
  // orders-api's metrics listener, where the model is bound (its pod's address with pods).
  const metricsUrl = (path: string): string => {
    const ep = (secretOutputs() as { model: BoundModel }).model.binding.workloads['orders-api']
      ?.metrics;
    if (ep === undefined) throw new Error('orders-api has no metrics listener');
    return `https://${ep.address}:${ep.port}${path}`;
  };

  it('scrapes every sidecar and the declared app metrics over mTLS: every target is up', async () => {
    const { url, jobs } = prometheus();
    expect([...jobs].sort()).toEqual([
      'app-ledger',
      'app-orders-api',
      'app-orders-writer',
      'envoy-ingress',
      'envoy-ledger',
      'envoy-orders-api',
      'envoy-orders-writer',
      'jmx-cassandra',
      'jmx-kafka',
      'keycloak',
      'nginx',
      'prometheus',
    ]);
    type Target = {
      labels: Record<string, string>;
      health: string;
      scrapeUrl: string;
      lastError: string;
    };
    // The first scrape of each job comes within one interval of Prometheus's start.
    let last: Target[] = [];
    const targets = await until(
      async () => {
        const r = await call(`${url}/api/v1/targets?state=active`);
        last = (JSON.parse(r.body) as { data: { activeTargets: Target[] } }).data.activeTargets;
        return last.length === jobs.length && last.every((x) => x.health === 'up') ? last : null;
      },
      60_000,
      'every Prometheus target up',
    ).catch((err: unknown) => {
      const down = last.filter((t) => t.health !== 'up');
      throw new Error(
        `${(err as Error).message}; not up: ${JSON.stringify(down.map((t) => [t.labels['job'], t.health, t.lastError]))}`,
      );
    });
    for (const t of targets)
      if (t.labels['job'] !== 'prometheus') expect(t.scrapeUrl).toMatch(/^https:\/\//);
    // The dashboards compiled from the model (ADR 0024) render, naming both routes.
    const index = await call(`${url}/consoles/index.html`);
    expect(index.status).toBe(200);
    for (const route of ['create-order', 'get-order']) expect(index.body).toContain(route);
  });

  it("lets Prometheus's SVID read orders-api's metrics listener, and refuses another workload's and plaintext", async () => {
    const right = await call(metricsUrl('/stats/prometheus'), {
      spiffeServer: true,
      client: pkiFiles('prometheus'),
    });
    expect(right.status).toBe(200);
    expect(right.body).toContain('envoy_server_live');
    await expect(
      call(metricsUrl('/stats/prometheus'), { spiffeServer: true, client: pkiFiles('ingress') }),
    ).rejects.toThrow(/certificate unknown/);
    await expect(call(metricsUrl('/metrics').replace('https:', 'http:'))).rejects.toThrow();
  });
});

describe('processes are supervised like pods', () => {
  const ledgerState = (): string =>
    join(outputs().trustBundle, '..', '..', 'run', 'ledger', 'supervisor.json');

  it('restarts a crashed process, as a kubelet would', async () => {
    const before = readState(ledgerState());
    expect(before?.childPid).toBeGreaterThan(1);
    process.kill(before?.childPid ?? 0, 'SIGKILL');
    const after = await until(
      async () => {
        const s = readState(ledgerState());
        return s && s.status === 'running' && s.childPid !== before?.childPid ? s : null;
      },
      30_000,
      'the restart',
    );
    expect(after.restarts).toBe((before?.restarts ?? 0) + 1);
    await until(
      async () =>
        (await getAs('ledger', `${outputs().services.ledger?.url}/readyz`)).status === 200,
      60_000,
      'ledger ready again',
    );
  });

  it('refresh notices a process whose supervisor died, and the next up brings it back', async () => {
    const { bin, env, common } = await selectStack(E2E_STACK);
    const st = readState(ledgerState());
    process.kill(st?.supervisorPid ?? 0, 'SIGKILL');
    process.kill(-(st?.childPid ?? 0), 'SIGKILL');
    expect(
      (await runPulumi(bin, ['refresh', '--yes', '--skip-preview', ...common], env)).code,
    ).toBe(0);
    const preview = await runPulumi(bin, ['preview', '--expect-no-changes', ...common], env);
    expect(preview.code).not.toBe(0); // the dropped process is to be created again
    expect((await runPulumi(bin, ['up', '--yes', '--skip-preview', ...common], env)).code).toBe(0);
    expect(readState(ledgerState())?.status).toBe('running');
    // Back means serving, not only a live process. In four full runs (2026-12-07) the ledger was not
    // back: refresh took the killed, not yet reaped supervisor for alive (docs/local.md, fixed). Its
    // answer and its log's tail are kept in the error if anything like it recurs.
    let last = { status: 0, body: '' };
    await until(
      async () => {
        last = await getAs('ledger', `${outputs().services.ledger?.url}/readyz`);
        return last.status === 200;
      },
      90_000,
      'ledger ready after the up',
    ).catch(async (err: unknown) => {
      // The probes' own request lines would fill the tail; what the ledger said otherwise, what its
      // sidecar's Kafka and Cassandra egress clusters saw, and what Kafka logged are kept instead.
      const tailOf = (file: string, keep: (line: string) => boolean, n: number): string =>
        existsSync(file)
          ? readFileSync(file, 'utf8').split('\n').filter(keep).slice(-n).join('\n')
          : `(no ${file})`;
      const run = join(ledgerState(), '..', '..');
      const ledgerLog = tailOf(
        join(run, 'ledger', 'process.log'),
        (l) => !l.includes('"url":"/readyz"'),
        40,
      );
      const kafkaLog = tailOf(
        join(run, 'kafka', 'process.log'),
        (l) => /WARN|ERROR|SSL|ssl|handshake|Rebalanc|ledger/.test(l),
        30,
      );
      const clusters = await getAs(
        'ledger',
        `${outputs().sidecars.ledger?.adminUrl ?? ''}/clusters`,
      )
        .then((r) =>
          r.body
            .split('\n')
            .filter((l) => /cx_active|cx_connect_fail|health_flags|rq_error/.test(l))
            .join('\n'),
        )
        .catch((e: unknown) => String(e));
      throw new Error(
        `${(err as Error).message}; last /readyz ${last.status} ${last.body}\n` +
          `ledger log (no /readyz lines):\n${ledgerLog}\nledger sidecar clusters:\n${clusters}\n` +
          `kafka log (warnings, SSL, rebalances):\n${kafkaLog}`,
      );
    });
  });
});

describe('an IdP outage: Keycloak stopped for 30 s', () => {
  // The sidecars verify tokens against the realm's keys they already hold (Envoy's remote JWKS cache,
  // policy compile/envoy/jwt.ts), so an outage of the IdP must cost new logins only: each refused at
  // once with an error that names Keycloak, never hung; every order with a token issued before is
  // accepted; and logins work again once the supervisor has restarted Keycloak.
  const keycloakState = (): string =>
    join(outputs().trustBundle, '..', '..', 'run', 'keycloak', 'supervisor.json');

  it('new logins fail fast and clearly, tokens issued before keep working, logins come back', async () => {
    const issued = await freshToken('alice');
    expect((await post(issued)).status).toBe(202); // the path works before the outage
    const st = readState(keycloakState());
    expect(st?.status).toBe('running');
    const supervisor = st?.supervisorPid ?? 0;
    const child = st?.childPid ?? 0;
    expect(child).toBeGreaterThan(1);
    // Hold the supervisor, so Keycloak stays down for the whole window instead of being restarted.
    process.kill(supervisor, 'SIGSTOP');
    const rows: { at: number; login: string; loginMs: number; order: number }[] = [];
    const t0 = Date.now();
    try {
      process.kill(-child, 'SIGTERM');
      await until(
        async () =>
          freshToken('alice').then(
            () => false,
            () => true,
          ),
        60_000,
        'Keycloak refusing logins',
      );
      const down = Date.now();
      while (Date.now() - down < 30_000) {
        const l0 = Date.now();
        const login = await freshToken('alice').then(
          () => 'issued',
          (e: unknown) => (e as Error).message,
        );
        const loginMs = Date.now() - l0;
        const order = (await post(issued)).status;
        rows.push({ at: Date.now() - down, login, loginMs, order });
        await new Promise((r) => setTimeout(r, 2_000));
      }
    } finally {
      process.kill(supervisor, 'SIGCONT');
    }
    const back = await until(
      async () => freshToken('alice').catch(() => null),
      240_000,
      'a new login after the supervisor restarted Keycloak',
    );
    const recoveredMs = Date.now() - t0;
    expect((await post(back)).status).toBe(202);
    process.stdout.write(
      `IdP outage: ${rows.length} logins refused (slowest ${Math.max(...rows.map((r) => r.loginMs))} ms), ` +
        `${rows.filter((r) => r.order === 202).length}/${rows.length} orders with an earlier token accepted; ` +
        `logins back ${recoveredMs} ms after the stop\n`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(5);
    for (const r of rows) {
      expect(r.login, JSON.stringify(r)).toMatch(/Keycloak/);
      expect(r.loginMs, JSON.stringify(r)).toBeLessThan(5_000);
      expect(r.order, JSON.stringify(r)).toBe(202);
    }
    expect(readState(keycloakState())?.restarts).toBe((st?.restarts ?? 0) + 1);
  });
});

describe('the k6 smoke scenario through the whole stack', () => {
  // The latency budgets are judged by `./trellis load` (k6 exits 99 on a breach, proven by
  // load-tests/test/gate.extended.test.ts). On this 2-core machine they are breached (docs/performance.md:
  // the stack's CPU per request puts its ceiling far below the budgets' rates), so this run does not
  // gate CI on them: it proves in CI that the load path works against the real stack with no error,
  // every check passing and no new connection after warm-up, and prints what the budgets measured.
  it('k6 smoke: 0 errors, every check passes, connections reused; the report names each breached budget', async () => {
    const reportsDir = join(import.meta.dirname, '..', '..', '..', '..', 'reports', 'e2e');
    const r = await runLoadOnStack({
      scenario: 'smoke',
      // Half the scenario's 30 s: this run proves the path, not the percentiles.
      durationS: 15,
      outputs: secretOutputs(),
      reportsDir,
      abortOnFail: false,
      command: 'e2e: runLoadOnStack({ scenario: "smoke" })',
      log: () => undefined,
    });
    const failed = r.report.thresholds.filter((t) => !t.ok);
    process.stdout.write(
      `k6 smoke (report ${r.reportDir}/summary.md): ` +
        r.report.routes.map((x) => `${x.route} p99 ${x.p99?.toFixed(1)} ms`).join(', ') +
        (failed.length
          ? `; over budget: ${failed.map((t) => `${t.key} ${t.expr} (${t.value?.toFixed(2)})`).join('; ')}`
          : '; every budget held') +
        '\n',
    );
    expect([0, 99]).toContain(r.exitCode); // anything else is a broken run, not a measurement
    expect(r.report.errorRate).toBe(0);
    expect(r.report.checksRate).toBe(1);
    expect(r.report.connectingP99).toBe(0);
    expect(r.report.tlsHandshakingP99).toBe(0);
    expect(r.report.measuredRequests).toBeGreaterThan(0);
    for (const route of r.report.routes) expect(route.count).toBeGreaterThan(0);
    // Exit 99 only ever for a latency budget, and then the report says which.
    expect(failed.every((t) => /^(http_req_duration|trellis_mesh_overhead)\{/.test(t.key))).toBe(
      true,
    );
    expect(r.exitCode === 99).toBe(failed.length > 0);
  });
});

describe('tokens at the edge, later', () => {
  it('refuses a real, correctly signed token once it has expired (past the 60 s clock skew) with 401', async () => {
    const t = await expiringToken();
    const { exp } = decodeJwt(t).payload as { exp: number };
    // Minted before the tests above; waits only for what is left of exp + 60 s skew + 2 s.
    await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 + 62_000 - Date.now())));
    expect((await post(t)).status).toBe(401);
  });
});

describe('secrets stay out of the state and the logs', () => {
  // Run after the whole suite has sent its requests (tokens through nginx, both sidecars and the
  // apps), logged in, rotated and restarted: every log the stack wrote by now is scanned.
  it('keeps passwords, client secrets, tokens and private keys out of the Pulumi state and every log', async () => {
    const { bin, env, base } = await selectStack(E2E_STACK);
    const state = await runPulumi(bin, ['stack', 'export', ...base], env, true);
    expect(state.code).toBe(0);
    expect(state.stdout).toContain('"resources"'); // a real export, not an empty answer
    const p = principals();
    const admin = (secretOutputs() as { keycloakAdmin?: { password?: string } }).keycloakAdmin;
    const passwords = [
      ...Object.entries(p.users).map(([u, v]) => [`${u}'s password`, v]),
      ...Object.entries(p.agents).map(([a, v]) => [`${a}'s client secret`, v]),
      ['the Keycloak admin password', admin?.password ?? ''],
    ] as [string, string][];
    expect(passwords.length).toBeGreaterThanOrEqual(4);
    for (const [what, v] of passwords) expect(v.length, what).toBeGreaterThanOrEqual(32);
    const inState = passwords.filter(([, v]) => state.stdout.includes(v)).map(([w]) => w);
    expect(inState).toEqual([]);
    expect(state.stdout).not.toContain('BEGIN PRIVATE KEY');

    // The tokens this suite used (cached per run), their signatures, and PEM blocks, in no log.
    const tokens = await Promise.all(['alice', 'bob'].map(async (w) => [w, await token(w)]));
    const secrets = [
      ...passwords,
      ...tokens.flatMap(([w, t]) => [
        [`${w}'s token`, t ?? ''],
        [`${w}'s token signature`, (t ?? '').split('.')[2] ?? ''],
      ]),
      ['a PEM block', '-----BEGIN'],
    ] as [string, string][];
    const run = join(outputs().trustBundle, '..', '..', 'run');
    const logs = (readdirSync(run, { recursive: true }) as string[])
      .map((f) => join(run, f))
      .filter((f) => /(\.log(\.\d+)?|access\.json)$/.test(f) && statSync(f).isFile());
    expect(logs.length).toBeGreaterThan(8);
    const leaks = logs.flatMap((f) => {
      const text = readFileSync(f, 'utf8');
      return secrets.filter(([, v]) => v !== '' && text.includes(v)).map(([w]) => `${w} in ${f}`);
    });
    expect(leaks).toEqual([]);
    // Keycloak's realm file holds the passwords on disk: its owner alone reads it.
    const realm = (readdirSync(join(run, 'keycloak'), { recursive: true }) as string[]).filter(
      (f) => f.endsWith(join('realm', 'trellis.json')),
    );
    expect(realm.length).toBe(1);
    expect(statSync(join(run, 'keycloak', realm[0] ?? '')).mode & 0o777).toBe(0o600);
  });
});

describe('pulumi lifecycle', () => {
  it('a second up with no change reports no changes', async () => {
    const { bin, env, common } = await selectStack(E2E_STACK);
    // Back to the committed config (rotation 0) first, then the no-change check.
    expect((await runPulumi(bin, ['up', '--yes', '--skip-preview', ...common], env)).code).toBe(0);
    const preview = await runPulumi(bin, ['preview', '--expect-no-changes', ...common], env);
    expect(preview.code).toBe(0);
  });

  it('destroy leaves no process and no file of the stack behind', async () => {
    const { bin, env, common } = await selectStack(E2E_STACK);
    const stackDir = join(outputs().trustBundle, '..', '..');
    expect(
      (await runPulumi(bin, ['destroy', '--yes', '--skip-preview', ...common], env)).code,
    ).toBe(0);
    let ps: string;
    try {
      ps = execFileSync('pgrep', ['-af', stackDir], { encoding: 'utf8' });
    } catch {
      ps = ''; // pgrep exits 1 when nothing matches
    }
    expect(ps.trim()).toBe('');
    expect(existsSync(stackDir)).toBe(false);
    // Nor any pod: namespace, host link, pod user or process in them (ADR 0012).
    expect(await podLeftovers(E2E_STACK)).toEqual({ netns: [], links: [], users: [], pids: [] });
  });
});
