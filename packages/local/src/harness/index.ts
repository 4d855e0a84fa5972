/** The harness for real processes: free loopback ports, own data/log dirs, real readiness probes. */
export { ManagedProcess, stopAll } from './process.ts';
export type { StartOptions } from './process.ts';
export { freePort, freePorts } from './ports.ts';
export { waitUntil } from './wait.ts';
export type { WaitOptions } from './wait.ts';
export { startEnvoy, validateEnvoyConfig } from './envoy.ts';
export type { EnvoyOptions, EnvoyInstance, EnvoyConfig, ConfigCheck } from './envoy.ts';
export { startNginx, testNginxConfig, renderNginxConf } from './nginx.ts';
export type { NginxOptions, NginxInstance } from './nginx.ts';
export { startKeycloak } from './keycloak.ts';
export type { KeycloakOptions, KeycloakInstance, AdminCredentials, RealmRepresentation } from './keycloak.ts';
