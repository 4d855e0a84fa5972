/**
 * `./trellis audit`: each log format normalised, the join by request id (with the data stores'
 * records correlated by time and identity), the filters, `--since`, and the argument checks. The
 * fixture lines are real ones, captured from the mesh component test's stack
 * (infra/local/test/mesh.extended.test.ts, TRELLIS_AUDIT_SAMPLE).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { auditLogFiles } from '@trellis/contracts';
import { CASSANDRA_AUDIT_LOG, KAFKA_AUTHORIZER_LOG } from '@trellis/local/harness';
import { bindOrThrow, compileEnvoy, envoyOptions, parseModel } from '@trellis/policy';
import {
  formatTable,
  parseCassandraAuditLine,
  parseEnvoyLine,
  parseKafkaAuthorizerLine,
  parseKeycloakLine,
  parseLog,
  parseNginxLine,
  parseProcessLine,
  parseSince,
  timeline,
} from '../src/audit-trail.ts';
import { logFilesOf, parseAuditArgs, readAudit } from '../src/verbs/audit.ts';
import { fixture } from './fixtures/audit-lines.ts';

const alice = fixture.aliceSub;

describe('parsers', () => {
  it('reads a sidecar line: peer, verified claims, route and the RBAC decision', () => {
    expect(parseEnvoyLine(fixture.ordersAllowed, 'orders-api-sidecar')).toEqual({
      time: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T[\d:.]+Z$/),
      source: 'envoy',
      component: 'orders-api-sidecar',
      requestId: fixture.okId,
      subject: alice,
      identity: 'spiffe://trellis.local/ns/trellis/sa/ingress',
      client: 'trellis-cli',
      scopes: expect.stringContaining('orders:write'),
      route: 'create-order',
      action: 'POST /orders',
      status: 201,
      decision: 'allow',
      reason: 'route_create-order',
    });
    expect(parseEnvoyLine(fixture.ordersDenied, 'orders-api-sidecar')).toMatchObject({
      requestId: fixture.denyId,
      status: 403,
      decision: 'deny',
      reason: 'rbac_access_denied_matched_policy[none]',
    });
  });

  it('reads a missing or forged token as a deny with jwt_authn’s reason', () => {
    expect(parseEnvoyLine(fixture.ordersNoToken, 'orders-api-sidecar')).toMatchObject({
      status: 401,
      decision: 'deny',
      reason: 'Jwt is missing',
    });
    const forged = parseEnvoyLine(fixture.ordersBadToken, 'orders-api-sidecar');
    expect(forged).toMatchObject({
      status: 401,
      decision: 'deny',
      reason: 'Jwt verification fails',
    });
    expect(forged).not.toHaveProperty('subject');
    // The edge only passed the 401 on: it decided nothing.
    const edge = parseEnvoyLine(fixture.edgePassing401, 'ingress-sidecar');
    expect(edge).toMatchObject({ status: 401 });
    expect(edge).not.toHaveProperty('decision');
  });

  it('reads the edge sidecar, nginx, the services, Cassandra, Kafka and Keycloak', () => {
    expect(parseEnvoyLine(fixture.edge, 'ingress-sidecar')).toMatchObject({
      requestId: fixture.okId,
      route: 'create-order',
      status: 201,
    });
    expect(parseNginxLine(fixture.nginx, 'nginx')).toMatchObject({
      source: 'nginx',
      requestId: fixture.okId,
      action: 'POST /orders',
      status: 201,
    });
    expect(parseProcessLine(fixture.appCompleted, 'orders-api')).toMatchObject({
      source: 'app',
      component: 'orders-api',
      requestId: fixture.okId,
      subject: alice,
      client: 'trellis-cli',
      identity: 'spiffe://trellis.local/ns/trellis/sa/ingress',
      status: 201,
    });
    expect(parseCassandraAuditLine(fixture.cassandraInsert, 'cassandra')).toMatchObject({
      source: 'cassandra',
      identity: 'orders-api',
      action: 'UPDATE orders.orders',
      decision: 'allow',
      reason: 'DML',
    });
    expect(parseKafkaAuthorizerLine(fixture.kafkaWrite, 'kafka')).toMatchObject({
      source: 'kafka',
      identity: 'spiffe://trellis.local/ns/trellis/sa/orders-api',
      action: expect.stringMatching(/^WRITE Topic:LITERAL:/),
      decision: 'allow',
    });
    expect(parseKeycloakLine(fixture.keycloakLogin, 'keycloak')).toMatchObject({
      source: 'keycloak',
      subject: alice,
      client: 'trellis-cli',
      identity: 'alice',
      action: 'LOGIN password',
      decision: 'allow',
    });
    expect(parseKeycloakLine(fixture.keycloakClientLogin, 'keycloak')).toMatchObject({
      client: 'reporting-bot',
      action: 'CLIENT_LOGIN client_credentials',
    });
    expect(parseProcessLine(fixture.ledgerProjected, 'ledger')).toMatchObject({
      component: 'ledger',
      requestId: fixture.okId,
      subject: alice,
      action: 'projected order',
    });
    expect(parseEnvoyLine(fixture.ordersEgress, 'orders-api-sidecar')).toMatchObject({
      action: 'outbound_cassandra → spiffe://trellis.local/ns/trellis/sa/cassandra',
    });
  });

  it('reads a statement whose CQL spans lines as one record, and a login', () => {
    const rs = parseLog(
      'cassandra-audit',
      'cassandra',
      [fixture.cassandraLogin, fixture.cassandraInsert, fixture.cassandraLedger].join('\n'),
    );
    expect(rs.map((r) => [r.identity, r.action, r.reason])).toEqual([
      ['orders-api', 'LOGIN_SUCCESS', 'AUTH'],
      ['orders-api', 'UPDATE orders.orders', 'DML'],
      ['ledger', 'UPDATE ledger.order_entries', 'DML'],
    ]);
  });

  it('skips lines that are not audit records', () => {
    expect(parseLog('process', 'cassandra', 'INFO  [main] 2026-12-06 something\n\n')).toEqual([]);
    expect(parseEnvoyLine('{"not":"envoy"}', 'x')).toBeUndefined();
    expect(parseCassandraAuditLine('user:a|host:b', 'c')).toBeUndefined();
    expect(parseKafkaAuthorizerLine('2026-12-06T05:00:00.000Z INFO hello', 'k')).toBeUndefined();
  });

  it("knows every field of the sidecars' access log format as compiled", () => {
    const parsed = parseModel(
      readFileSync(fileURLToPath(new URL('../../../trellis.yaml', import.meta.url)), 'utf8'),
    );
    if (!parsed.ok) throw new Error(JSON.stringify(parsed.errors));
    const model = bindOrThrow(parsed.model, { kind: 'example', baseDir: '/srv' }, 'example plan');
    const o = { ...envoyOptions(model, 'orders-api'), accessLog: '/srv/access.log' };
    const listener = compileEnvoy(model, o).bootstrap.static_resources.listeners.find(
      (l) => l.name === 'inbound_http',
    );
    const hcm = listener?.filter_chains[0]?.filters[0];
    const format =
      hcm?.name === 'envoy.filters.network.http_connection_manager'
        ? hcm.typed_config.access_log?.[0]?.typed_config.log_format.json_format
        : undefined;
    expect(Object.keys(JSON.parse(fixture.ordersAllowed) as object).sort()).toEqual(
      Object.keys(format ?? {}).sort(),
    );
  });
});

describe('timeline', () => {
  const all = [
    ...parseLog('envoy', 'ingress-sidecar', [fixture.edge, fixture.edgeDenied].join('\n')),
    ...parseLog(
      'envoy',
      'orders-api-sidecar',
      [fixture.ordersEgress, fixture.ordersAllowed, fixture.ordersDenied].join('\n'),
    ),
    ...parseLog('nginx', 'nginx', [fixture.nginx, fixture.nginxDenied].join('\n')),
    ...parseLog('process', 'orders-api', fixture.appCompleted),
    ...parseLog('process', 'ledger', fixture.ledgerProjected),
    ...parseLog('process', 'keycloak', fixture.keycloakLogin),
    ...parseLog(
      'cassandra-audit',
      'cassandra',
      [fixture.cassandraLogin, fixture.cassandraInsert, fixture.cassandraLedger].join('\n'),
    ),
    ...parseLog(
      'kafka-authorizer',
      'kafka',
      [fixture.kafkaFetch, fixture.kafkaHeartbeat, fixture.kafkaWrite].join('\n'),
    ),
  ];

  it("joins a request's hops by its id, oldest first, with the writes and fetch it caused", () => {
    const t = timeline(all, { requestId: fixture.okId });
    expect(t.map((r) => `${r.component}${r.correlated ? '~' : ''} ${r.action ?? ''}`)).toEqual([
      'nginx POST /orders',
      'ingress-sidecar POST /orders',
      'orders-api-sidecar POST /orders',
      'cassandra~ UPDATE orders.orders',
      'kafka~ READ Topic:LITERAL:orders.v1 (Fetch)',
      'kafka~ WRITE Topic:LITERAL:orders.v1 (Produce)',
      'orders-api POST /orders (request completed)',
      'cassandra~ UPDATE ledger.order_entries',
      'ledger projected order',
    ]);
  });

  it("shows a refused request's deny and its reason, and nothing of the other request", () => {
    const t = timeline(all, { requestId: fixture.denyId });
    expect(t.map((r) => r.source)).toEqual(['nginx', 'envoy', 'envoy']);
    expect(t.at(-1)).toMatchObject({
      decision: 'deny',
      subject: fixture.bobSub,
      reason: 'rbac_access_denied_matched_policy[none]',
    });
  });

  it('filters by subject and by identity (- and _ alike)', () => {
    const bySub = timeline(all, { subject: alice });
    expect(bySub.map((r) => r.source)).toEqual(['keycloak', 'envoy', 'app', 'app']);
    const byId = timeline(all, { identity: 'ORDERS_API' });
    expect(byId.map((r) => `${r.source} ${r.action ?? ''}`)).toEqual([
      'cassandra LOGIN_SUCCESS',
      'cassandra UPDATE orders.orders',
      'kafka WRITE Topic:LITERAL:orders.v1 (Produce)',
    ]);
  });

  it('filters by time', () => {
    const last = Math.max(...all.map((r) => Date.parse(r.time)));
    expect(timeline(all, { sinceMs: last }).length).toBeGreaterThan(0);
    expect(timeline(all, { sinceMs: last + 1 })).toEqual([]);
  });

  it('prints a table with one row per record and a header', () => {
    const text = formatTable(timeline(all, { requestId: fixture.okId }));
    const rows = text.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^TIME +SOURCE +DECISION +STATUS +IDENTITY/);
    expect(rows.length).toBe(timeline(all, { requestId: fixture.okId }).length + 1);
    expect(text).toContain('orders-api-sidecar');
  });
});

describe('arguments', () => {
  const now = Date.parse('2026-12-06T06:00:00Z');

  it('reads the filters, --json and --dir', () => {
    expect(
      parseAuditArgs(['--request-id', 'r1', '--identity', 'ledger', '--json', '--dir', '/x'], now),
    ).toEqual({ filter: { requestId: 'r1', identity: 'ledger' }, json: true, dir: '/x' });
  });

  it('takes --since as a duration or an ISO time, and names a bad one', () => {
    expect(parseSince('15m', now)).toBe(now - 15 * 60_000);
    expect(parseSince('2h', now)).toBe(now - 7_200_000);
    expect(parseSince('2026-12-06T05:00:00Z', now)).toBe(now - 3_600_000);
    expect(() => parseSince('yesterday', now)).toThrow(
      "--since: 'yesterday' is neither a duration (30s, 15m, 2h, 1d) nor an ISO 8601 time",
    );
  });

  it('takes --request as --request-id', () => {
    expect(parseAuditArgs(['--request', 'r2', '--dir', '/x'], now).filter).toEqual({
      requestId: 'r2',
    });
  });

  it('refuses unknown arguments and missing values', () => {
    expect(() => parseAuditArgs(['--requests'], now)).toThrow(/unknown argument '--requests'/);
    expect(() => parseAuditArgs(['--request'], now)).toThrow(/--request needs a value/);
    expect(() => parseAuditArgs(['--subject'], now)).toThrow(/--subject needs a value/);
    expect(() => parseAuditArgs(['--stack', 'a', '--dir', 'b'], now)).toThrow(/give one/);
  });
});

describe('the files of a stack', () => {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-audit-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const put = (rel: string, text: string) => {
    mkdirSync(dirname(join(dir, rel)), { recursive: true });
    writeFileSync(join(dir, rel), `${text}\n`);
  };

  it('names the files the servers write (one spelling on both sides)', () => {
    expect(auditLogFiles.cassandra).toBe(`logs/${CASSANDRA_AUDIT_LOG}`);
    expect(auditLogFiles.kafkaAuthorizer).toBe(`logs/${KAFKA_AUTHORIZER_LOG}`);
  });

  it("finds and reads every component's log under run/", () => {
    put('run/ingress-sidecar/access.log', fixture.edge);
    put('run/orders-api-sidecar/pod/access.log', fixture.ordersAllowed);
    put('run/nginx/access.json', fixture.nginx);
    put('run/orders-api/process.log', fixture.appCompleted);
    put('run/keycloak/process.log', fixture.keycloakLogin);
    put('run/cassandra/logs/audit.log', fixture.cassandraInsert);
    put('run/kafka/logs/kafka-authorizer.log', fixture.kafkaWrite);
    expect(logFilesOf(dir).map((f) => [f.component, f.kind])).toEqual([
      ['cassandra', 'cassandra-audit'],
      ['ingress-sidecar', 'envoy'],
      ['kafka', 'kafka-authorizer'],
      ['keycloak', 'process'],
      ['nginx', 'nginx'],
      ['orders-api', 'process'],
      ['orders-api-sidecar', 'envoy'],
    ]);
    expect(
      readAudit(dir)
        .map((r) => r.source)
        .sort(),
    ).toEqual(['app', 'cassandra', 'envoy', 'envoy', 'kafka', 'keycloak', 'nginx']);
  });

  it('says where it looked when the stack has no logs', () => {
    expect(() => logFilesOf(join(dir, 'none'))).toThrow(/^no logs at .*none\/run: is the stack up/);
  });
});
