import { describe, expect, it } from 'vitest';
import { loadModelFile } from '@trellis/components/model';
import { bindOrThrow, localPortsAt } from '@trellis/policy';
import { localEnvironment, podPlan } from '../src/context.ts';
import { bypassRows, type BypassInput } from './e2e/bypass-plan.ts';

const written = loadModelFile(new URL('../../../trellis.yaml', import.meta.url).pathname);
const plan = podPlan(written, 28000);
const model = bindOrThrow(written, localEnvironment(28000, '/s', plan.env), 'test');
const input = (pods: BypassInput['pods']): BypassInput => ({
  model,
  pods,
  ports: localPortsAt(28000),
  pkiDir: (id) => `/s/pki/${id}`,
});
const ordersPod = { 'orders-api': { address: '198.18.28.4', user: 'trellis-e2e-orders-api' } };

describe('the bypass table', () => {
  it('has app, egress, admin and Kafka listener rows with orders-api the only pod', () => {
    const rows = bypassRows(input(ordersPod));
    expect(rows.map((r) => r.title)).toEqual([
      'orders-api: a forged-identity POST /orders to its app port http (28820)',
      "orders-api: a certificate-less cassandra client on its sidecar's egress (28720)",
      "orders-api: a certificate-less kafka client on its sidecar's egress (28721)",
      'orders-api: its Envoy admin interface (28502)',
      'kafka: a plaintext produce to its direct client listener (28300)',
      "kafka: a plaintext produce to ledger's client listener (28302)",
      "kafka: a plaintext produce to orders-api's client listener (28303)",
      "kafka: a plaintext produce to orders-writer's client listener (28304)",
    ]);
    // No key row: no other pod user exists to be refused.
    const app = rows[0];
    expect(app?.works).toMatchObject({
      from: { kind: 'pod', pod: 'orders-api' },
      action: { kind: 'http', url: 'http://127.0.0.1:28820/orders', method: 'POST' },
    });
    // From the host, at the pod's loopback port and at its address; the forged headers name the ingress.
    expect(app?.refused.map((p) => (p.action.kind === 'http' ? p.action.url : ''))).toEqual([
      'http://127.0.0.1:28820/orders',
      'http://198.18.28.4:28820/orders',
    ]);
    expect(app?.refused.every((p) => p.from.kind === 'host')).toBe(true);
    const h = app?.works.action.kind === 'http' ? app.works.action.headers : {};
    expect(h['x-forwarded-client-cert']).toBe('URI=spiffe://trellis.local/ns/trellis/sa/ingress');
    const claims = JSON.parse(Buffer.from(h['x-jwt-payload'] ?? '', 'base64url').toString()) as {
      scope: string;
    };
    expect(claims.scope).toBe('orders:write');
  });

  it('refuses from every other pod, adds key rows once a second pod exists, and server rows per server pod', () => {
    const rows = bypassRows(
      input({
        ...ordersPod,
        ledger: { address: '198.18.28.3', user: 'trellis-e2e-ledger' },
        cassandra: { address: '198.18.28.22', user: 'trellis-e2e-cassandra' },
      }),
    );
    const titles = rows.map((r) => r.title);
    expect(titles).toContain('cassandra: JMX, nodetool without credentials (28071)');
    expect(titles).toContain('cassandra: its storage (gossip) port (28070)');
    expect(titles.some((t) => t.startsWith('kafka: its controller'))).toBe(false);
    expect(titles.some((t) => t.startsWith('keycloak:'))).toBe(false);
    const jmx = rows.find((r) => r.title.startsWith('cassandra: JMX'));
    expect(jmx?.works).toEqual({
      from: { kind: 'pod', pod: 'cassandra' },
      action: { kind: 'nodetool', host: '127.0.0.1', port: 28071 },
    });
    expect(
      jmx?.refused.map(
        (p) =>
          `${p.from.kind === 'pod' ? p.from.pod : 'host'} ${p.action.kind === 'tcp' ? p.action.host : ''}`,
      ),
    ).toEqual([
      'host 127.0.0.1',
      'host 198.18.28.22',
      'ledger 127.0.0.1',
      'ledger 198.18.28.22',
      'orders-api 127.0.0.1',
      'orders-api 198.18.28.22',
    ]);
    const key = rows.find(
      (r) => r.title === "orders-api: its SVID key, read by another pod's user",
    );
    expect(key?.refusedCode).toBe('EACCES');
    expect(key?.works.action).toEqual({ kind: 'read', file: '/s/pki/orders-api/key.pem' });
    expect(key?.refused.map((p) => (p.from.kind === 'pod' ? p.from.pod : 'host'))).toEqual([
      'cassandra',
      'ledger',
    ]);
    expect(titles).toContain("cassandra: its SVID key, read by another pod's user");
  });

  it('has a row for a peer egress listener where the binding gives one (any HTTP answer works)', () => {
    const w = model.binding.workloads['orders-api'];
    if (!w) throw new Error('no orders-api binding');
    const withPeer = {
      ...model,
      binding: {
        ...model.binding,
        workloads: {
          ...model.binding.workloads,
          'orders-api': {
            ...w,
            peers: {
              ledger: {
                port: 'http',
                upstream: { address: '198.18.28.3', port: 28610 },
                listen: { address: '127.0.0.1', port: 28722 },
              },
            },
          },
        },
      },
    };
    const row = bypassRows({ ...input(ordersPod), model: withPeer }).find((r) =>
      r.title.includes('egress to ledger'),
    );
    expect(row?.works.action).toEqual({
      kind: 'http',
      url: 'http://127.0.0.1:28722/',
      method: 'GET',
      headers: {},
      anyStatus: true,
    });
    expect(row?.refused).toHaveLength(2);
  });

  it('has no row for a workload that is not a pod, and no JMX row while Cassandra is not one', () => {
    const rows = bypassRows(input({}));
    expect(rows.every((r) => r.title.startsWith('kafka: a plaintext produce'))).toBe(true);
    expect(rows).toHaveLength(4);
  });
});
