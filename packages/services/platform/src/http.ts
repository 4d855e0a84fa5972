import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { requestIdHeader } from '@trellis/contracts';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import {
  IdentityError,
  parsePayloadHeader,
  peerFromXfcc,
  type Caller,
  type IdentityOptions,
} from './identity.ts';
import {
  ATTR,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  Tracing,
  failSpan,
  type Context,
  type Span,
  type TracingOptions,
} from './tracing.ts';
import {
  ATTR_HTTP_REQUEST_METHOD,
  ATTR_HTTP_RESPONSE_STATUS_CODE,
  ATTR_HTTP_ROUTE,
  ATTR_URL_PATH,
  ATTR_ERROR_TYPE,
} from '@opentelemetry/semantic-conventions';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by {@link authenticate} on routes that require an identity; null elsewhere. */
    caller: Caller | null;
    /** The request's SERVER span; null when tracing is off or the route is not traced. */
    span: Span | null;
    /** The context of {@link span}: the parent of what the handler does. Use {@link traceContext}. */
    spanContext: Context | null;
  }
  interface FastifyInstance {
    /** The service's tracer ({@link Tracing.off} without an endpoint); shut it down after the dependencies. */
    tracing: Tracing;
  }
  interface FastifyContextConfig {
    /** `false`: no span for this route (probes, metrics). @default true */
    trace?: boolean;
  }
}

/** Where logs go. Fastify's logger is pino: one JSON object per line. */
export interface LogOptions {
  /** pino level. @default 'info' */
  level?: string;
  /** Destination; tests pass a stream to read the lines back. @default stdout */
  stream?: NodeJS.WritableStream;
}

/** Options shared by every Trellis smoke service's HTTP side. */
export interface HttpOptions {
  /** Service name, on every log line. */
  service: string;
  /** `false` silences logging (unit tests that do not read logs). */
  log: LogOptions | false;
  /** Readiness per dependency (all true → ready). */
  readiness: () => Record<string, boolean>;
  /** Liveness; false makes `/healthz` fail so the supervisor restarts the process. @default always true */
  liveness?: () => boolean;
  /** Largest accepted request body. @default 16384 */
  bodyLimit?: number;
  /** Where spans go; without an endpoint (or exporter) tracing is off. @default off */
  tracing?: TracingOptions;
  /** How long `app.close()` waits for in-flight requests before closing anyway. @default 30000 */
  drainMs?: number;
}

/** The request id header: honoured when sane, generated otherwise, echoed on every response. */
export const REQUEST_ID_HEADER = requestIdHeader;
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * A Fastify instance with what every service needs: JSON logs with request id, strict body
 * validation errors that name the field, `/healthz` and `/readyz`, and JSON errors.
 */
export function createHttpApp(opts: HttpOptions): FastifyInstance {
  const app = Fastify({
    logger:
      opts.log === false
        ? false
        : {
            level: opts.log.level ?? 'info',
            base: { service: opts.service },
            ...(opts.log.stream ? { stream: opts.log.stream } : {}),
          },
    // Ids from the edge (nginx sets one) are kept, so one id follows a request through every hop.
    genReqId: (req: IncomingMessage) => {
      const v = req.headers[REQUEST_ID_HEADER];
      return typeof v === 'string' && SANE_REQUEST_ID.test(v) ? v : randomUUID();
    },
    // One line per request (below) instead of Fastify's two: logging is a third of the CPU a POST costs.
    logController: new LogController({
      requestIdLogLabel: 'requestId',
      disableRequestLogging: true,
    }),
    bodyLimit: opts.bodyLimit ?? 16 * 1024,
    ajv: {
      customOptions: {
        // Fastify's defaults would silently drop unknown fields and coerce "5" to 5; refuse instead.
        removeAdditional: false,
        coerceTypes: false,
        allErrors: false,
      },
    },
    return503OnClosing: true,
  });

  app.decorateRequest('caller', null);
  app.decorateRequest('span', null);
  app.decorateRequest('spanContext', null);
  const tracing = Tracing.create(opts.tracing);
  app.decorate('tracing', tracing);
  // Requests inside a handler, from their first hook to their last: a close waits for them (below).
  const inFlight = new Set<FastifyRequest>();
  app.addHook('onRequest', async (req, reply) => {
    inFlight.add(req);
    void reply.header(REQUEST_ID_HEADER, req.id);
  });
  if (tracing.enabled) traceRequests(app, tracing);
  // After authentication has bound the caller to req.log, so the line carries the identity too.
  app.addHook('onResponse', async (req, reply) => {
    const fields = {
      // The path only: a bearer token may ride in the query (RFC 6750 §2.3; the sidecar's jwt_authn
      // reads `access_token` there by default) and must not reach the log.
      req: { method: req.method, url: req.url.split('?', 1)[0] },
      res: { statusCode: reply.statusCode },
      responseTime: Math.round(reply.elapsedTime * 100) / 100,
    };
    // 5xx as warn: a failing handler already logged its error; a 503 probe is worth seeing too.
    if (reply.statusCode >= 500) req.log.warn(fields, 'request completed');
    else req.log.info(fields, 'request completed');
  });
  // After the line above, so a drained close has logged every request it waited for.
  const settled = new Set<() => void>();
  const done = async (req: FastifyRequest): Promise<void> => {
    if (inFlight.delete(req) && inFlight.size === 0) for (const wake of settled) wake();
  };
  app.addHook('onResponse', done);
  app.addHook('onRequestAbort', done);
  // Drain before the listener closes. By now Fastify answers new requests 503 without running a
  // handler (return503OnClosing), so the set only shrinks. Waiting here, not after server.close(),
  // also keeps the dependencies that the services' onClose hooks disconnect (Kafka, Cassandra) up
  // until the last handler has used them. Bounded: a stuck handler must not stall a close forever
  // (the signal handler's own grace period is the outer bound; see shutdown.ts).
  const drainMs = opts.drainMs ?? 30_000;
  app.addHook('preClose', async () => {
    if (inFlight.size === 0) return;
    app.log.info({ inFlight: inFlight.size }, 'closing: waiting for in-flight requests');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        app.log.warn({ inFlight: inFlight.size, drainMs }, 'closing with requests still in flight');
        finish();
      }, drainMs);
      const finish = (): void => {
        clearTimeout(timer);
        settled.delete(finish);
        resolve();
      };
      settled.add(finish);
    });
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      const field = fieldOf(err);
      return reply.code(400).send({
        error: 'bad_request',
        message: `${field}: ${describe(err)}`,
        field,
        requestId: req.id,
      });
    }
    const status = err.statusCode ?? 500;
    if (status < 500) {
      return reply
        .code(status)
        .send({ error: 'bad_request', message: err.message, requestId: req.id });
    }
    req.log.error({ err }, 'request failed');
    return reply
      .code(status)
      .send({ error: 'internal', message: 'internal error', requestId: req.id });
  });
  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: 'not_found',
      message: `no route ${req.method} ${req.url}`,
      requestId: req.id,
    }),
  );

  // Probes are hit every few seconds by the supervisor: log them only when they fail.
  app.get('/healthz', { logLevel: 'warn', config: { trace: false } }, async (_req, reply) => {
    const alive = opts.liveness?.() ?? true;
    return reply.code(alive ? 200 : 503).send({ status: alive ? 'ok' : 'failing' });
  });
  app.get('/readyz', { logLevel: 'warn', config: { trace: false } }, async (_req, reply) => {
    const checks = opts.readiness();
    const ready = Object.values(checks).every(Boolean);
    return reply.code(ready ? 200 : 503).send({ status: ready ? 'ready' : 'not_ready', checks });
  });
  return app;
}

/**
 * onRequest hook for routes that need a caller: reads the sidecar's identity headers, answers 401
 * without a user identity, and binds the identity to the request's log lines.
 */
export function authenticate(identity: IdentityOptions) {
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    let caller: Caller;
    try {
      caller = parsePayloadHeader(identity.payloadHeader, req.headers[identity.payloadHeader]);
      const peer = peerFromXfcc(req.headers[identity.xfccHeader]);
      if (peer) caller.peer = peer;
      else if (identity.requirePeer)
        throw new IdentityError(`no SPIFFE peer in ${identity.xfccHeader}`);
    } catch (err) {
      if (!(err instanceof IdentityError)) throw err;
      req.log.warn({ reason: err.message }, 'request refused: no valid caller identity');
      await reply
        .code(401)
        .header('www-authenticate', 'Bearer')
        .send({ error: 'unauthenticated', message: err.message, requestId: req.id });
      return reply;
    }
    req.caller = caller;
    const log = req.log.child({
      caller: { sub: caller.subject, client: caller.clientId, peer: caller.peer },
    });
    bindLogger(req, reply, log);
  };
}

/**
 * One SERVER span per request, continuing the incoming `traceparent` (the sidecar's), named
 * `<METHOD> <route>`; the request's log lines carry its `traceId`. Only added when tracing is on.
 */
function traceRequests(app: FastifyInstance, tracing: Tracing): void {
  app.addHook('onRequest', async (req, reply) => {
    if (req.routeOptions.config.trace === false) return;
    const parent = tracing.extract(req.headers);
    const route = req.routeOptions.url;
    const span = tracing.startSpan(
      route === undefined ? req.method : `${req.method} ${route}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          [ATTR_HTTP_REQUEST_METHOD]: req.method,
          // The path only: a token may ride in the query (as in the log line).
          [ATTR_URL_PATH]: req.url.split('?', 1)[0],
          ...(route !== undefined ? { [ATTR_HTTP_ROUTE]: route } : {}),
          [ATTR.requestId]: req.id,
        },
      },
      parent,
    );
    req.span = span;
    req.spanContext = tracing.contextWith(parent, span);
    // Onto the request's own child logger (Fastify makes one per request): pino's setBindings costs
    // a fraction of another child (about 20 µs of CPU per request measured; docs/performance.md).
    const log = req.log as FastifyBaseLogger & { setBindings?: (b: object) => void };
    if (typeof log.setBindings === 'function')
      log.setBindings({ traceId: span.spanContext().traceId });
    else bindLogger(req, reply, req.log.child({ traceId: span.spanContext().traceId }));
  });
  app.addHook('onError', async (req, _reply, err) => {
    if (req.span) failSpan(req.span, err);
  });
  app.addHook('onResponse', async (req, reply) => endRequestSpan(req, reply.statusCode));
  app.addHook('onRequestAbort', async (req) => endRequestSpan(req, undefined));
}

function endRequestSpan(req: FastifyRequest, status: number | undefined): void {
  const span = req.span;
  if (!span) return;
  req.span = null;
  // Set by authenticate: the verified subject, its client and peer; never a token.
  const caller = req.caller;
  if (caller) {
    span.setAttribute(ATTR.userId, caller.subject);
    if (caller.clientId !== undefined) span.setAttribute('trellis.caller.client', caller.clientId);
    if (caller.peer !== undefined) span.setAttribute('trellis.caller.peer', caller.peer);
  }
  if (status === undefined) {
    span.setAttribute(ATTR_ERROR_TYPE, 'aborted');
  } else {
    span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
    // Server spans: only 5xx are errors (a 4xx is the client's).
    if (status >= 500) {
      span.setAttribute(ATTR_ERROR_TYPE, String(status));
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
  }
  span.end();
}

/** The context the handler's spans descend from: the request's span, or none (ROOT_CONTEXT). */
export function traceContext(req: FastifyRequest): Context {
  return req.spanContext ?? ROOT_CONTEXT;
}

/** Swap the request's logger, so later lines (including "request completed") carry the identity. */
function bindLogger(req: FastifyRequest, reply: FastifyReply, log: FastifyBaseLogger): void {
  req.log = log;
  reply.log = log;
}

function fieldOf(err: FastifyError): string {
  const v = err.validation?.[0];
  const where = err.validationContext ?? 'request';
  if (!v) return where;
  const params = v.params as Record<string, unknown>;
  const path = v.instancePath.split('/').filter(Boolean);
  if (typeof params.missingProperty === 'string') path.push(params.missingProperty);
  if (typeof params.additionalProperty === 'string') path.push(params.additionalProperty);
  return [where, ...path].join('.');
}

function describe(err: FastifyError): string {
  const v = err.validation?.[0];
  if (!v) return err.message;
  const params = v.params as Record<string, unknown>;
  if (typeof params.additionalProperty === 'string') return 'is not an allowed field';
  if (typeof params.missingProperty === 'string') return 'is required';
  return v.message ?? 'is invalid';
}
