/**
 * `@trellis/policy`: the identity-and-policy model. Parse and validate a model, compile it to each
 * target, and decide any request with the oracle. Pure functions, no I/O.
 */
export { formatErrors, formatPath, rootPath } from './errors.ts';
export type { PolicyError } from './errors.ts';
export {
  callersOf,
  collectorSpiffeId,
  dataServiceSpiffeId,
  dataServices,
  edgeWorkloads,
  matchesPathTemplate,
  namespaceOf,
  otlpTracesPath,
  pathTemplateRegex,
  metricsServerName,
  metricsServerSpiffeId,
  metricsServers,
  routesOf,
  scopesForRoles,
  scraperSpiffeId,
  sidecarStatsPath,
  spiffeId,
  workloadBySpiffeId,
} from './identity.ts';
export type { DataService, MetricsServer } from './identity.ts';
export {
  cassandraPermissions,
  httpMethods,
  modelJsonSchema,
  modelSchema,
  protocols,
} from './schema.ts';
export type {
  Agent,
  CassandraGrant,
  CassandraPermission,
  EnvironmentBudgets,
  HttpMethod,
  IdentityProvider,
  KafkaTopic,
  Model,
  ModelInput,
  MetricsSpec,
  MtlsSetting,
  PortSpec,
  Protocol,
  Route,
  RouteAuth,
  RouteBudget,
  TracingSpec,
  Workload,
} from './schema.ts';
export {
  cassandraSystemKeyspaces,
  minJustificationLength,
  parseModel,
  validateModel,
} from './validate.ts';
export type { ModelResult, ValidModel } from './validate.ts';

// Binding: the one place where an environment changes the model.
export { bind, bindOrThrow } from './bind/bind.ts';
export { envoyOptions } from './bind/envoy-options.ts';
export { examplePlan } from './bind/example.ts';
export { istioAdminPort, istioSdsSocket, istioSidecarPorts } from './bind/kubernetes.ts';
export {
  localBlocks,
  localKeycloakProvider,
  localPaths,
  localPortOffsets,
  localScraperName,
  localPortsAt,
} from './bind/local.ts';
export type { LocalPortName } from './bind/local.ts';
export { localServerMetricsSlots } from './bind/local-servers.ts';
export { localCollectorName, localJaegerName } from './bind/local-tracing.ts';
export { peerPort } from './bind/peers.ts';
export type {
  BindResult,
  Binding,
  BoundModel,
  BudgetOverride,
  DataEgress,
  EdgeBinding,
  Endpoint,
  Environment,
  ExampleEnvironment,
  IdentityProviderBinding,
  KubernetesEnvironment,
  LocalEnvironment,
  LocalPods,
  PeerEgress,
  SvidLocation,
  TracingBinding,
  TracingPlacement,
  WorkloadBinding,
} from './bind/types.ts';

// The oracle and the requests it decides.
export { allowed, tokenValidFor } from './oracle.ts';
export {
  claimAt,
  claimValues,
  jwtClockSkewSeconds,
  kafkaOperations,
  spaceDelimitedClaims,
} from './request.ts';
export type {
  AccessRequest,
  CqlRequest,
  Decision,
  EdgeRequest,
  HttpRequest,
  JsonValue,
  KafkaOperation,
  KafkaRequest,
  KafkaResourceType,
  Peer,
  ScrapeRequest,
  TraceExportRequest,
  TcpRequest,
  Token,
} from './request.ts';

// Compilers.
export type { ObjectMeta } from './compile/common.ts';
export { compileIstio, istioClaimKey, istioPath, istioPrincipal } from './compile/istio.ts';
export type {
  AuthorizationPolicy,
  IstioCondition,
  IstioJwtRule,
  IstioOperation,
  IstioOptions,
  IstioResource,
  IstioRule,
  IstioSource,
  PeerAuthentication,
  RequestAuthentication,
  WorkloadSelector,
} from './compile/istio.ts';
export {
  compileIstioTelemetry,
  istioAccessLogFormat,
  istioAuditLogProvider,
  istioTracingProvider,
} from './compile/istio-telemetry.ts';
export type {
  IstioExtensionProvider,
  IstioTelemetryArtefacts,
  IstioTelemetryOptions,
  IstioTracing,
  Telemetry,
} from './compile/istio-telemetry.ts';
export { compileGatewayApi, gatewayPath } from './compile/gateway.ts';
export type {
  Gateway,
  GatewayListener,
  GatewayOptions,
  HttpRoute,
  HttpRouteMatch,
} from './compile/gateway.ts';
export {
  adminStatsCluster,
  collectorServerName,
  compileEnvoy,
  envoyAccessLogSource,
  faultDefaultDelay,
  faultDelayRuntime,
  httpAccessLogFormat,
  httpAuditFields,
  httpFilterOrder,
  jwtMetadataFilter,
  metricsListenerName,
  pathMatcher,
  sidecarServiceName,
  tcpAccessLogFormat,
  tcpAuditFields,
  telemetryEgressListenerName,
  traceCollectorCluster,
} from './compile/envoy.ts';
export type { EnvoyArtefacts, EnvoyEndpoint, EnvoyOptions } from './compile/envoy.ts';
export type {
  EnvoyBootstrap,
  EnvoyCluster,
  EnvoyListener,
  EnvoyRoute,
  HttpFilter,
  JwtProvider,
  NetworkFilter,
  RbacPermission,
  RbacPolicy,
  RbacPrincipal,
  SdsFile,
  StringMatcher,
} from './compile/envoy-types.ts';
export { compileKafkaAcls, kafkaAclCliArgs, kafkaPrincipalMappingRules } from './compile/kafka.ts';
export type { KafkaAclBinding, KafkaAclOptions } from './compile/kafka.ts';
export { cassandraRole, compileCassandra } from './compile/cassandra.ts';
export type {
  CassandraArtefacts,
  CassandraOptions,
  CassandraStatement,
} from './compile/cassandra.ts';
export { agentRole, compileKeycloakRealm } from './compile/keycloak.ts';
export type {
  KeycloakClient,
  KeycloakClientScope,
  KeycloakDemoUser,
  KeycloakOptions,
  KeycloakProtocolMapper,
  KeycloakRealm,
  KeycloakUser,
} from './compile/keycloak.ts';
export {
  compileNginx,
  compileNginxHttp,
  nginxLocation,
  nginxMetricsGauges,
  nginxMetricsPath,
  traceparentMap,
} from './compile/nginx.ts';
export type { NginxHttpOptions, NginxOptions } from './compile/nginx.ts';
export { compileK6Thresholds, knownEnvironments, meshOverheadMetric } from './compile/k6.ts';
export type {
  K6Budget,
  K6Environment,
  K6MeshBudget,
  K6Options,
  K6RouteTarget,
  K6Statistic,
  K6Threshold,
  K6Thresholds,
} from './compile/k6.ts';
export {
  burnWindows,
  compilePrometheusRules,
  compileSloRules,
  durationSeconds,
  envoyDefaultBucketsMs,
  envoyRouteMetrics,
  latencyErrorBudget,
  formatDuration,
  routeStatPrefix,
  scaledBurnWindows,
  SloBudgetError,
  sloBucketsMs,
  sloAlerts,
  sloMinSamplesPerWindow,
  sloSeries,
  sloTimeScaleProblem,
  sloWindows,
} from './compile/slo.ts';
export type {
  AlertingRule,
  BurnWindow,
  PrometheusRule,
  PrometheusRuleFile,
  PrometheusRuleOptions,
  RecordingRule,
  RuleGroup,
  SloMetricSource,
  SloOptions,
  SloTimeScale,
} from './compile/slo.ts';

export { compilePrometheusScrape, scrapeJobs } from './compile/prometheus.ts';
export { compileConsoles, consoleFiles, consoleSourceMetrics } from './compile/consoles.ts';
export type { CompiledConsoles, ConsoleOptions } from './compile/consoles.ts';
export {
  compileDataMetricsProxy,
  dataMetricsPath,
  dataMetricsServerName,
} from './compile/envoy/data-metrics.ts';
export type { DataMetricsProxyOptions } from './compile/envoy/data-metrics.ts';
export {
  collectorFrontListenerName,
  compileCollectorFront,
  compileJaegerConfig,
  compileOtelCollectorConfig,
  jaegerServerName,
} from './compile/tracing.ts';
export type {
  CollectorFrontOptions,
  JaegerConfigOptions,
  OtelCollectorConfigOptions,
  PemPaths,
} from './compile/tracing.ts';
export type {
  PrometheusScrapeConfig,
  PrometheusScrapeFile,
  PrometheusScrapeOptions,
  PrometheusTlsConfig,
} from './compile/prometheus.ts';

// Evaluators of compiled artefacts (documented semantics of each system), for tests and diagnostics.
export { evaluateIstio, istioUpstreamHeaders } from './evaluate/istio.ts';
export type { IstioRequest } from './evaluate/istio.ts';
export { evaluateEnvoy, stringMatches } from './evaluate/envoy.ts';
export type { EnvoyRequest } from './evaluate/envoy.ts';
export { evaluateKafkaAcls } from './evaluate/kafka.ts';
export type { KafkaAclRequest } from './evaluate/kafka.ts';
export { evaluateCassandra, parseCassandraAuth } from './evaluate/cassandra.ts';
export type { CassandraAuthState } from './evaluate/cassandra.ts';

// Rendering for the CLI.
export { renderTarget, renderTargets } from './render.ts';
export type { RenderOptions, RenderTarget } from './render.ts';
