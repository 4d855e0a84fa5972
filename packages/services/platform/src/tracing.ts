/**
 * Traces (issue 15, docs/services.md "Traces"): the OpenTelemetry SDK with explicit spans, exported in
 * batches over OTLP/HTTP to the pod-local endpoint the sidecar offers. Contexts are passed by hand
 * (a request's, a record's) instead of through a global context manager: no AsyncLocalStorage on
 * every await, no global provider, and several apps with their own exporters can share one process
 * (the tests do). With no endpoint, {@link Tracing.off} is used: every method returns at once.
 */
import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Attributes,
  type Context,
  type Span,
  type SpanOptions,
  type TextMapGetter,
  type Tracer,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter as OtlpJsonExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as OtlpProtoExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, TracerProvider, type SpanExporter } from '@opentelemetry/sdk-trace';
import {
  ATTR_DB_COLLECTION_NAME,
  ATTR_DB_NAMESPACE,
  ATTR_DB_OPERATION_BATCH_SIZE,
  ATTR_DB_OPERATION_NAME,
  ATTR_DB_QUERY_SUMMARY,
  ATTR_DB_SYSTEM_NAME,
  ATTR_ERROR_TYPE,
  ATTR_SERVICE_NAME,
} from '@opentelemetry/semantic-conventions';

export type { Context, Span };
export { ROOT_CONTEXT, SpanKind, SpanStatusCode };

/**
 * Incubating messaging attributes (semantic conventions 1.45), copied as the OpenTelemetry JS docs
 * advise for incubating names instead of importing `semantic-conventions/incubating`.
 */
export const ATTR = {
  messagingSystem: 'messaging.system.name',
  messagingDestination: 'messaging.destination.name',
  messagingOperationType: 'messaging.operation.type',
  messagingOperationName: 'messaging.operation.name',
  messagingConsumerGroup: 'messaging.consumer.group.name',
  messagingPartition: 'messaging.destination.partition.id',
  messagingBatchCount: 'messaging.batch.message_count',
  kafkaKey: 'kafka.message.key',
  kafkaOffset: 'kafka.offset',
  userId: 'user.id',
  /** The order a span works on (Trellis's own). */
  orderId: 'trellis.order.id',
  /** The request id (`x-request-id`) the order came with. */
  requestId: 'trellis.request.id',
} as const;

/** What a service needs to trace: where spans go and under which `service.name`. */
export interface TracingOptions {
  /** `service.name` of every span (`OTEL_SERVICE_NAME`). */
  serviceName: string;
  /** OTLP/HTTP traces URL (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), e.g. `http://127.0.0.1:4318/v1/traces`. */
  endpoint?: string;
  /** OTLP/HTTP encoding (`OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`). @default 'http/protobuf' */
  protocol?: OtlpProtocol;
  /** Another exporter instead of OTLP (tests pass the SDK's InMemorySpanExporter). */
  exporter?: SpanExporter;
  /** Longest wait before a batch is exported, ms. @default 1000 */
  scheduledDelayMillis?: number;
}

/** The OTLP/HTTP encodings (the specification's names). */
export const OTLP_PROTOCOLS = ['http/protobuf', 'http/json'] as const;
/** One of {@link OTLP_PROTOCOLS}. */
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

function otlpExporter(opts: TracingOptions): SpanExporter {
  const config = { url: opts.endpoint };
  return (opts.protocol ?? 'http/protobuf') === 'http/json'
    ? new OtlpJsonExporter(config)
    : new OtlpProtoExporter(config);
}

/** W3C trace context headers (`traceparent`, `tracestate`), for a Kafka record or an SQS message. */
export type TraceHeaders = Record<string, string>;

/** Header values as kafkajs hands them over (Buffers), as Node gives HTTP ones, or plain strings. */
export type HeaderCarrier = Readonly<
  Record<string, string | Buffer | readonly (string | Buffer)[] | undefined>
>;

const carrierGetter: TextMapGetter<HeaderCarrier> = {
  keys: (c) => Object.keys(c),
  get: (c, key) => {
    const v = c[key];
    if (v === undefined) return undefined;
    if (Array.isArray(v)) return v.map((x: string | Buffer) => x.toString());
    return (v as string | Buffer).toString();
  },
};

const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

const defaults = { scheduledDelayMillis: 1_000 } as const;

/**
 * A service's tracer. {@link Tracing.off} (no endpoint) does nothing and costs a branch per call; an
 * enabled one owns a `TracerProvider` with a `BatchSpanProcessor` that {@link shutdown} flushes.
 */
export class Tracing {
  /** The disabled tracer: no spans, no headers. */
  static readonly off = new Tracing(undefined);

  /** False when tracing is off; callers may skip preparing attributes then. */
  readonly enabled: boolean;
  private readonly provider: TracerProvider | undefined;
  private readonly tracer: Tracer | undefined;
  private readonly propagator = new W3CTraceContextPropagator();

  private constructor(opts: TracingOptions | undefined) {
    const exporter = opts?.exporter ?? (opts?.endpoint ? otlpExporter(opts) : undefined);
    if (!opts || !exporter) {
      this.enabled = false;
      return;
    }
    this.enabled = true;
    this.provider = new TracerProvider({
      resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: opts.serviceName }),
      spanProcessors: [
        new BatchSpanProcessor({
          exporter,
          scheduledDelayMillis: opts.scheduledDelayMillis ?? defaults.scheduledDelayMillis,
        }),
      ],
    });
    this.tracer = this.provider.getTracer('@trellis/service-platform');
  }

  /** A tracer for `opts`, or {@link Tracing.off} when there is none (no endpoint, no exporter). */
  static create(opts: TracingOptions | undefined): Tracing {
    return opts && (opts.endpoint || opts.exporter) ? new Tracing(opts) : Tracing.off;
  }

  /** Start a span under `parent` (a request's or a record's context; a new trace from ROOT_CONTEXT). */
  startSpan(name: string, options: SpanOptions, parent: Context = ROOT_CONTEXT): Span {
    if (!this.tracer) return NOOP_SPAN;
    return this.tracer.startSpan(name, options, parent);
  }

  /** `parent` with `span` as its current span: what children and injected headers descend from. */
  contextWith(parent: Context, span: Span): Context {
    return this.enabled ? trace.setSpan(parent, span) : parent;
  }

  /**
   * Run `fn` in a span that ends when it settles; a throw is recorded on the span (status ERROR,
   * `error.type`) and rethrown.
   */
  async inSpan<T>(
    name: string,
    options: SpanOptions,
    parent: Context,
    fn: (span: Span, ctx: Context) => Promise<T>,
  ): Promise<T> {
    if (!this.tracer) return fn(NOOP_SPAN, parent);
    const span = this.tracer.startSpan(name, options, parent);
    try {
      return await fn(span, trace.setSpan(parent, span));
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** The remote context in `headers` (`traceparent`, `tracestate`), or ROOT_CONTEXT without one. */
  extract(headers: HeaderCarrier | undefined): Context {
    if (!this.enabled || !headers) return ROOT_CONTEXT;
    return this.propagator.extract(ROOT_CONTEXT, headers, carrierGetter);
  }

  /** `traceparent` (and `tracestate`) of `ctx`'s span, to put on an outgoing record; {} when off. */
  inject(ctx: Context): TraceHeaders {
    const out: TraceHeaders = {};
    if (this.enabled) {
      this.propagator.inject(ctx, out, {
        set: (c, k, v) => {
          c[k] = v;
        },
      });
    }
    return out;
  }

  /** Export what has ended so far (tests read the exporter after this). */
  async flush(): Promise<void> {
    await this.provider?.forceFlush();
  }

  /** Export what is left and stop; spans started afterwards are dropped. */
  async shutdown(): Promise<void> {
    await this.provider?.shutdown();
  }
}

/** The trace id of the span in `ctx`, when it is a valid one (for log lines). */
export function traceIdIn(ctx: Context): string | undefined {
  const sc = trace.getSpanContext(ctx);
  return sc && trace.isSpanContextValid(sc) ? sc.traceId : undefined;
}

/** Mark a span failed with `err`: status ERROR, `error.type`, the exception event. */
export function failSpan(span: Span, err: unknown): void {
  if (!span.isRecording()) return;
  const e = err instanceof Error ? err : new Error(String(err));
  span.recordException(e);
  span.setAttribute(ATTR_ERROR_TYPE, e.name);
  span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
}

/** A messaging system as the semantic conventions name it. */
export type MessagingSystem = 'kafka' | 'aws_sqs';

/** A PRODUCER span's name and options: `send <destination>`. */
export function sendSpan(
  system: MessagingSystem,
  destination: string,
  attributes: Attributes = {},
): { name: string; options: SpanOptions } {
  return {
    name: `send ${destination}`,
    options: {
      kind: SpanKind.PRODUCER,
      attributes: {
        [ATTR.messagingSystem]: system,
        [ATTR.messagingDestination]: destination,
        [ATTR.messagingOperationType]: 'send',
        [ATTR.messagingOperationName]: 'send',
        ...attributes,
      },
    },
  };
}

/** A CONSUMER span's name and options: `process <destination>`, for one received record. */
export function processSpan(
  system: MessagingSystem,
  destination: string,
  attributes: Attributes = {},
): { name: string; options: SpanOptions } {
  return {
    name: `process ${destination}`,
    options: {
      kind: SpanKind.CONSUMER,
      attributes: {
        [ATTR.messagingSystem]: system,
        [ATTR.messagingDestination]: destination,
        [ATTR.messagingOperationType]: 'process',
        [ATTR.messagingOperationName]: 'process',
        ...attributes,
      },
    },
  };
}

/**
 * A CLIENT span's name and options for a CQL statement: `<OPERATION> <keyspace>.<table>` (the
 * semantic conventions' query summary). Never the statement's values.
 */
export function cassandraSpan(
  operation: 'SELECT' | 'INSERT' | 'BATCH INSERT',
  keyspace: string,
  table: string,
  batchSize?: number,
): { name: string; options: SpanOptions } {
  const summary = `${operation} ${keyspace}.${table}`;
  return {
    name: summary,
    options: {
      kind: SpanKind.CLIENT,
      attributes: {
        [ATTR_DB_SYSTEM_NAME]: 'cassandra',
        [ATTR_DB_NAMESPACE]: keyspace,
        [ATTR_DB_COLLECTION_NAME]: table,
        [ATTR_DB_OPERATION_NAME]: operation === 'BATCH INSERT' ? 'BATCH' : operation,
        [ATTR_DB_QUERY_SUMMARY]: summary,
        ...(batchSize !== undefined ? { [ATTR_DB_OPERATION_BATCH_SIZE]: batchSize } : {}),
      },
    },
  };
}
