/**
 * More of Envoy's v3 API as the Envoy compiler emits it (see envoy-types.ts): the fault filter of
 * test stacks (ADR 0025) and the HTTP connection manager's tracing (ADR 0023).
 */

/**
 * `extensions.filters.http.fault.v3.HTTPFault`, delay only: `delay.fixed_delay` (must be above 0)
 * and `delay.percentage` (`type.v3.FractionalPercent`), both overridable at runtime.
 */
export interface HttpFault {
  '@type': 'type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault';
  delay: {
    fixed_delay: string;
    percentage: { numerator: number; denominator: 'HUNDRED' };
  };
}

/**
 * `HttpConnectionManager.Tracing` with `config.trace.v3.Tracing.Http` of the OpenTelemetry tracer
 * (`config.trace.v3.OpenTelemetryConfig`, exporting over `config.core.v3.HttpService`).
 */
export interface HcmTracing {
  /** `type.v3.Percent`, 0 to 100. */
  random_sampling: { value: number };
  provider: {
    name: 'envoy.tracers.opentelemetry';
    typed_config: {
      '@type': 'type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig';
      http_service: { http_uri: { uri: string; cluster: string; timeout: string } };
      service_name: string;
    };
  };
}
