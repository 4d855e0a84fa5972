/** The harness for real processes: free loopback ports, own data/log dirs, real readiness probes. */
export { ManagedProcess, stopAll } from './process.ts';
export type { StartOptions } from './process.ts';
export { freePort, freePorts } from './ports.ts';
export { waitUntil } from './wait.ts';
export type { WaitOptions } from './wait.ts';
export {
  startCassandra,
  probeCassandra,
  cassandraClientOptions,
  cassandraConnectError,
  nodetool,
  LOCAL_DATACENTER,
  CASSANDRA_HOST,
  bootstrapCassandra,
  cassandraBootstrapMarker,
  cassandraLaunchSpec,
  cassandraConfig,
  commitlogConfig,
} from './cassandra.ts';
export type {
  CassandraOptions,
  CassandraServer,
  CassandraClientCredentials,
  CassandraTlsFiles,
  CassandraPorts,
  CassandraLaunchSpec,
  CommitlogSync,
} from './cassandra.ts';
export {
  startKafka,
  probeKafka,
  kafkaClientConfig,
  kafkaProperties,
  renderProperties,
  kafkaClasspath,
  kafkaJava,
  kafkaServerArgs,
  kafkaConfFiles,
  formatKafkaStorage,
  ensureSpiffePrincipalBuilder,
  SPIFFE_PRINCIPAL_BUILDER,
  KAFKA_LOG4J2,
} from './kafka.ts';
export type {
  KafkaOptions,
  KafkaServer,
  KafkaClientCredentials,
  KafkaTlsFiles,
  KafkaPorts,
  KafkaListener,
} from './kafka.ts';
export { CertificateAuthority, writePemFiles, splitPem, certificateSans } from './tls.ts';
export type { IssueOptions, IssuedCert, PemFiles } from './tls.ts';
export { startEnvoy, validateEnvoyConfig, envoyArgs } from './envoy.ts';
export type {
  EnvoyOptions,
  EnvoyInstance,
  EnvoyConfig,
  ConfigCheck,
  EnvoyArgsOptions,
} from './envoy.ts';
export { startNginx, testNginxConfig, renderNginxConf, nginxLaunchSpec } from './nginx.ts';
export type { NginxOptions, NginxInstance, NginxLaunchSpec, RenderNginxOptions } from './nginx.ts';
export {
  startKeycloak,
  probeKeycloak,
  keycloakLaunchSpec,
  keycloakRealmFile,
  keycloakJvmOptions,
} from './keycloak.ts';
export type {
  KeycloakLaunchOptions,
  KeycloakLaunchSpec,
  KeycloakOptions,
  KeycloakInstance,
  AdminCredentials,
  RealmRepresentation,
} from './keycloak.ts';
export {
  startKubeControlPlane,
  KubeClient,
  KubeApiError,
  apiserverArgs,
  controllerManagerArgs,
  egressSelectorConfig,
  etcdArgs,
  fakeNode,
  kubeconfig,
  kwokArgs,
  schedulerArgs,
  startEgressTrap,
  writeControlPlanePki,
  DISABLED_ADMISSION_PLUGINS,
  KWOK_NODE_ANNOTATION,
  SERVICE_CIDR,
} from './kube/index.ts';
export type {
  KubeControlPlane,
  KubeControlPlaneOptions,
  KubeClientOptions,
  KubeResponse,
  EgressTrap,
} from './kube/index.ts';
