/** The harness for real processes: free loopback ports, own data/log dirs, real readiness probes. */
export { ManagedProcess, stopAll } from './process.ts';
export type { StartOptions } from './process.ts';
export { freePort, freePorts } from './ports.ts';
export { waitUntil } from './wait.ts';
export type { WaitOptions } from './wait.ts';
export {
  startCassandra,
  LOCAL_DATACENTER,
  CASSANDRA_HOST,
  bootstrapCassandra,
  cassandraBootstrapMarker,
  cassandraLaunchSpec,
} from './cassandra.ts';
export type { CassandraLaunchSpec } from './cassandra.ts';
export {
  probeCassandra,
  cassandraClientOptions,
  cassandraConnectError,
  nodetool,
  nodetoolArgv,
} from './cassandra-client.ts';
export type {
  CassandraServer,
  CassandraClientCredentials,
  CassandraEndpoint,
} from './cassandra-client.ts';
export {
  startCassandraCluster,
  issueCassandraClusterTls,
  clusterReplication,
  evenTokens,
  parseNodetoolStatus,
  CASSANDRA_CLUSTER_ADDRESSES,
  MUTUAL_TLS_AUTHENTICATOR,
  MUTUAL_TLS_INTERNODE_AUTHENTICATOR,
  SPIFFE_CERTIFICATE_VALIDATOR,
} from './cassandra-cluster.ts';
export type {
  CassandraCluster,
  CassandraClusterNode,
  CassandraClusterOptions,
} from './cassandra-cluster.ts';
export {
  CASSANDRA_AUDIT_LOG,
  cassandraAuditLogging,
  cassandraConfig,
  commitlogConfig,
} from './cassandra-config.ts';
export type {
  CassandraClass,
  CassandraOptions,
  CassandraTlsFiles,
  CassandraPorts,
  CommitlogSync,
} from './cassandra-config.ts';
export {
  startKafka,
  launchKafka,
  awaitKafka,
  kafkaClasspath,
  kafkaJava,
  formatKafkaStorage,
} from './kafka.ts';
export { startKafkaCluster, describeKafkaQuorum } from './kafka-cluster.ts';
export type {
  KafkaCluster,
  KafkaClusterNode,
  KafkaClusterOptions,
  QuorumQuestion,
  QuorumAnswer,
  QuorumReplica,
} from './kafka-cluster.ts';
export {
  ORDERS_POD_CLUSTER_IDS,
  startOrdersPodCluster,
  startPodKafkaCluster,
} from './kafka-pod-cluster.ts';
export { countKeys, lostAndDuplicated } from './kafka-read.ts';
export type {
  NodeCut,
  PodKafkaCluster,
  PodKafkaClusterOptions,
  TopicAccess,
} from './kafka-pod-cluster.ts';
export { probeKafka, kafkaClientConfig } from './kafka-client.ts';
export type { KafkaServer, KafkaClientCredentials } from './kafka-client.ts';
export {
  kafkaProperties,
  renderProperties,
  kafkaServerArgs,
  kafkaConfFiles,
  KAFKA_AUTHORIZER_LOG,
  KAFKA_AUTHORIZER_LOGGING,
  KAFKA_LOG4J2,
  KAFKA_STANDARD_AUTHORIZER,
  kafkaAuthorizerProperties,
} from './kafka-config.ts';
export type {
  KafkaOptions,
  KafkaTlsFiles,
  KafkaPorts,
  KafkaListener,
  KafkaVoter,
  KafkaClusterMembership,
} from './kafka-config.ts';
export {
  ensureSpiffePrincipalBuilder,
  ensureKafkaQuorumProbe,
  SPIFFE_PRINCIPAL_BUILDER,
  KAFKA_QUORUM_PROBE,
} from './kafka-principal.ts';
export { CertificateAuthority, writePemFiles, splitPem, certificateSans } from './tls.ts';
export {
  reloadKafkaCertificates,
  reloadCassandraCertificates,
  kafkaReloadEntries,
  servedCertificate,
  keystoreLeaf,
} from './cert-reload.ts';
export type {
  CassandraCertReloadOptions,
  CertReloadResult,
  KafkaCertReloadOptions,
  ServedCertificate,
  TlsClientFiles,
  TlsEndpoint,
} from './cert-reload.ts';
export type { CaSubject, IssueOptions, IssuedCert, PemFiles } from './tls.ts';
export { startEnvoy, validateEnvoyConfig, envoyArgs } from './envoy.ts';
export type {
  EnvoyOptions,
  EnvoyInstance,
  EnvoyConfig,
  ConfigCheck,
  EnvoyArgsOptions,
} from './envoy.ts';
export {
  startElasticMq,
  elasticMqConfig,
  checkElasticMqQueues,
  elasticMqStartedVersion,
  ELASTICMQ_REGION,
} from './elasticmq.ts';
export type { ElasticMqOptions, ElasticMqInstance, ElasticMqQueue } from './elasticmq.ts';
export { startPrometheus, prometheusArgs } from './prometheus.ts';
export {
  JMX_EXPORTER_CONFIGS,
  JMX_EXPORTER_HOST,
  jmxExporterAgentArg,
  jmxExporterConfig,
  jmxExporterConfigFile,
} from './jmx-exporter.ts';
export type { JmxExporterOptions, JmxExporterTarget } from './jmx-exporter.ts';
export type { PrometheusOptions, PrometheusInstance, PromSample } from './prometheus.ts';
export { startNginx, testNginxConfig, renderNginxConf, nginxLaunchSpec } from './nginx.ts';
export type { NginxOptions, NginxInstance, NginxLaunchSpec, RenderNginxOptions } from './nginx.ts';
export {
  startKeycloak,
  clientCredentialsRealm,
  probeKeycloak,
  keycloakLaunchSpec,
  keycloakRealmFile,
  keycloakJvmOptions,
} from './keycloak.ts';
export type {
  KeycloakLaunchOptions,
  KeycloakLaunchSpec,
  KeycloakOptions,
  KeycloakServerTls,
  KeycloakInstance,
  AdminCredentials,
  RealmRepresentation,
} from './keycloak.ts';
export type { KeycloakTlsFiles } from '../toolchain/keycloak.ts';
export { requestText } from './https.ts';
export type { TextRequestOptions, TextReply } from './https.ts';
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
