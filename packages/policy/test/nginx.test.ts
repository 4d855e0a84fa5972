/**
 * The edge's rate limits in the compiled nginx config: one zone per route keyed by the route's method
 * only, 429, and a bucket that decides exactly as the sidecar's Envoy bucket compiled from the same
 * model (simulated from each target's own config, as each implementation computes it).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compileEnvoy, compileNginxHttp, traceparentMap, validateModel } from '../src/index.ts';
import type { BoundModel, EnvoyListener } from '../src/index.ts';
import { example, referenceBound, referenceData } from './fixtures.ts';

const opts = {
  listen: { address: '127.0.0.1', port: 8443 },
  tls: { certificate: '/run/t/tls.crt', key: '/run/t/tls.key' },
  upstream: { address: '127.0.0.1', port: 15443 },
};

type Data = ReturnType<typeof referenceData>;
type RouteData = Record<string, unknown>;

/** The reference model with its routes changed by `edit`, validated. */
function modelWith(edit: (routes: Record<string, RouteData>) => void): BoundModel {
  const d: Data = referenceData();
  edit(d.routes as Record<string, RouteData>);
  const r = validateModel(d);
  if (!r.ok) throw new Error(JSON.stringify(r.errors));
  return example(r.model);
}

/** The text of the `location <pattern> { ... }` block. */
function location(conf: string, pattern: string): string {
  const start = conf.indexOf(`location ${pattern} {`);
  if (start < 0) throw new Error(`no location ${pattern}`);
  return conf.slice(start, conf.indexOf('\n  }', start));
}

describe('nginx rate limits', () => {
  const conf = compileNginxHttp(referenceBound(), opts);

  it("gives each route the model's rate in a zone of its own, answered with 429", () => {
    expect(conf).toContain('limit_req_status 429;');
    expect(conf).toContain(
      'limit_req_zone $route_create_order_key zone=route_create-order:1m rate=600r/s;',
    );
    expect(conf).toContain(
      'limit_req_zone $route_get_order_key zone=route_get-order:1m rate=1200r/s;',
    );
    // burst - 1: nginx admits burst + 1 at once, Envoy's bucket holds burst.
    expect(location(conf, '= /orders')).toContain(
      'limit_req zone=route_create-order burst=899 nodelay;',
    );
    expect(location(conf, '= /orders')).not.toContain('route_get-order');
    expect(location(conf, '~ "^/orders/[^/]+$"')).toContain(
      'limit_req zone=route_get-order burst=1799 nodelay;',
    );
  });

  it('keys each zone on one constant for all clients, and only for the route method', () => {
    expect(conf).toContain(
      'map $request_method $route_create_order_key {\n  default "";\n  POST 1;\n}',
    );
    expect(conf).toContain(
      'map $request_method $route_get_order_key {\n  default "";\n  GET 1;\n}',
    );
    expect(conf).not.toMatch(/limit_req_zone \$(binary_)?remote_addr/);
  });

  it('gives two routes on one path a bucket each, in the one location', () => {
    const m = modelWith((routes) => {
      routes['list-orders'] = {
        ...routes['create-order'],
        method: 'GET',
        rateLimit: { requestsPerSecond: 5, burst: 5 },
      };
    });
    const c = compileNginxHttp(m, opts);
    const loc = location(c, '= /orders');
    expect(loc).toContain('limit_except GET POST { deny all; }');
    expect(loc).toContain('limit_req zone=route_create-order burst=899 nodelay;');
    expect(loc).toContain('limit_req zone=route_list-orders burst=4 nodelay;');
    expect(c).toContain('map $request_method $route_list_orders_key {\n  default "";\n  GET 1;\n}');
  });

  it('writes no burst for a burst of 1 (nginx refuses burst=0)', () => {
    const m = modelWith((routes) => {
      const r = routes['create-order'];
      if (r) r['rateLimit'] = { requestsPerSecond: 1, burst: 1 };
    });
    expect(location(compileNginxHttp(m, opts), '= /orders')).toContain(
      'limit_req zone=route_create-order nodelay;',
    );
  });

  it('limits only the routes that have a rate, and nothing when none has', () => {
    const one = compileNginxHttp(
      modelWith((routes) => {
        delete routes['get-order']?.['rateLimit'];
      }),
      opts,
    );
    expect(one).not.toContain('get-order');
    expect(location(one, '~ "^/orders/[^/]+$"')).not.toContain('limit_req');
    expect(location(one, '= /orders')).toContain('limit_req zone=route_create-order');
    const none = compileNginxHttp(
      modelWith((routes) => {
        for (const r of Object.values(routes)) delete r['rateLimit'];
      }),
      opts,
    );
    // Only the access log's $limit_req_status (empty then) remains.
    expect(none).not.toMatch(/^\s*limit_req/m);
  });
});

/** Decisions of nginx's limit_req for arrivals at `times` (ms), from ngx_http_limit_req_module.c. */
function nginxDecisions(conf: string, zone: string, times: number[]): boolean[] {
  const rate = Number(new RegExp(`zone=${zone}:\\S+ rate=(\\d+)r/s;`).exec(conf)?.[1]);
  const burstArg = new RegExp(`limit_req zone=${zone}(?: burst=(\\d+))? nodelay;`).exec(conf);
  if (!rate || !burstArg) throw new Error(`zone ${zone} not found`);
  // Both in thousandths of a request, as nginx keeps them.
  const milliRate = rate * 1000;
  const burst = Number(burstArg[1] ?? 0) * 1000;
  let node: { excess: number; last: number } | undefined;
  return times.map((now) => {
    if (!node) {
      node = { excess: 0, last: now };
      return true;
    }
    const excess = Math.max(
      0,
      node.excess - Math.trunc((milliRate * (now - node.last)) / 1000) + 1000,
    );
    if (excess > burst) return false;
    node = { excess, last: now };
    return true;
  });
}

/** Decisions of Envoy's token bucket (full at start, refilled continuously), in thousandths. */
function envoyDecisions(
  bucket: { max_tokens: number; tokens_per_fill: number; fill_interval: string },
  times: number[],
): boolean[] {
  const fillMs = Number(/^(\d+)s$/.exec(bucket.fill_interval)?.[1]) * 1000;
  if (!fillMs) throw new Error(`fill_interval ${bucket.fill_interval}`);
  const max = bucket.max_tokens * 1000;
  let tokens = max;
  let last = times[0] ?? 0;
  return times.map((now) => {
    tokens = Math.min(max, tokens + ((now - last) * bucket.tokens_per_fill * 1000) / fillMs);
    last = now;
    if (tokens < 1000) return false;
    tokens -= 1000;
    return true;
  });
}

/** The token bucket the orders-api sidecar has for `route`. */
function sidecarBucket(model: BoundModel, route: string) {
  const { bootstrap } = compileEnvoy(model, {
    workload: 'orders-api',
    inbound: { http: 15080 },
    app: { http: { address: '127.0.0.1', port: 18080 } },
    outbound: {
      cassandra: { address: '127.0.0.1', port: 9142, listenPort: 19042 },
      kafka: { address: '127.0.0.1', port: 9093, listenPort: 19093 },
    },
    sds: { dir: '/s', certChain: '/c', privateKey: '/k', trustBundle: '/b' },
  });
  const inbound = bootstrap.static_resources.listeners.find(
    (l) => l.name === 'inbound_http',
  ) as EnvoyListener;
  const f = inbound.filter_chains[0]?.filters[0];
  const hcm =
    f?.name === 'envoy.filters.network.http_connection_manager' ? f.typed_config : undefined;
  const r = hcm?.route_config.virtual_hosts.flatMap((v) => v.routes).find((x) => x.name === route);
  const bucket = r?.typed_per_filter_config?.['envoy.filters.http.local_ratelimit'].token_bucket;
  if (!bucket) throw new Error(`no token bucket for ${route}`);
  return bucket;
}

describe('the edge and the sidecar count alike', () => {
  const base = referenceBound();

  it('admit and refuse the same arrivals for any rate and burst the model allows', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 30 }),
        fc.integer({ min: 0, max: 20 }),
        fc.array(fc.integer({ min: 0, max: 99 }), { minLength: 40, maxLength: 250 }),
        (rps, extra, draws) => {
          // A changed copy, not re-validated (slow): burst >= requestsPerSecond as validation wants.
          const m = structuredClone(base);
          const r = m.routes['create-order'];
          if (!r) throw new Error('no create-order');
          r.rateLimit = { requestsPerSecond: rps, burst: rps + extra };
          // Arrivals a third over the rate: half back to back (bursts), the rest up to 3 periods
          // apart, so that the bucket empties, refills, and empties again.
          const gap = (d: number) => (d < 50 ? 0 : Math.floor((((d - 50) / 50) * 3000) / rps));
          const times = draws.reduce<number[]>(
            (acc, d) => [...acc, (acc.at(-1) ?? 0) + gap(d)],
            [],
          );
          const edge = nginxDecisions(compileNginxHttp(m, opts), 'route_create-order', times);
          const sidecar = envoyDecisions(sidecarBucket(m, 'create-order'), times);
          expect(edge).toEqual(sidecar);
        },
      ),
      { numRuns: 100 },
    );
  }, 30_000);

  it('refuses the request after the burst, and admits again after the refill', () => {
    const m = modelWith((routes) => {
      const r = routes['create-order'];
      if (r) r['rateLimit'] = { requestsPerSecond: 2, burst: 3 };
    });
    const times = [0, 1, 2, 3, 4, 500, 501];
    const expected = [true, true, true, false, false, true, false];
    expect(nginxDecisions(compileNginxHttp(m, opts), 'route_create-order', times)).toEqual(
      expected,
    );
    expect(envoyDecisions(sidecarBucket(m, 'create-order'), times)).toEqual(expected);
  });
});

describe('nginx access log', () => {
  const conf = compileNginxHttp(referenceBound(), { ...opts, accessLog: '/run/t/access.json' });
  const format = /log_format trellis escape=json '(.*)';/.exec(conf)?.[1] ?? '';

  it('writes JSON with the request id it sends on, and the path without its query', () => {
    expect(conf).toContain('access_log /run/t/access.json trellis;');
    expect(conf).toContain('proxy_set_header X-Request-Id $request_id;');
    expect(format).toContain('"request_id":"$request_id"');
    expect(format).toContain('"uri":"$uri"');
    expect(format).not.toContain('$request_uri');
    expect(format).not.toContain('$args');
  });

  it('starts the trace: traceparent from the request id, replacing the client’s, and logs it', () => {
    expect(conf).toContain('proxy_set_header traceparent $trellis_traceparent;');
    expect(conf).toContain('proxy_set_header tracestate "";');
    expect(conf).toContain(traceparentMap);
    expect(format).toContain('"traceparent":"$trellis_traceparent"');
    // The map's regex (PCRE, here in JS: the same syntax) on a request id gives a W3C traceparent
    // whose trace id is the request id.
    const m = /"~(.*)" "00-\$trellis_trace-\$trellis_span-01";/.exec(traceparentMap);
    const re = new RegExp(m?.[1] ?? 'missing');
    const id = '4bf92f3577b34da6a3ce929d0e0e4736';
    const g = re.exec(id)?.groups;
    const traceparent = `00-${g?.trellis_trace}-${g?.trellis_span}-01`;
    expect(traceparent).toBe('00-4bf92f3577b34da6a3ce929d0e0e4736-a3ce929d0e0e4736-01');
    expect(traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(re.test('not-a-request-id')).toBe(false);
  });

  it('logs no request header that may carry a credential', () => {
    expect(format).not.toMatch(/\$http_|\$request_body|\$cookie_/);
  });
});
