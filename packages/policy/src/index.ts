/**
 * `@trellis/policy`: the identity-and-policy model. Parse and validate a model, compile it to each
 * target, and decide any request with the oracle. Pure functions, no I/O.
 */
export { formatErrors, formatPath, rootPath } from './errors.ts';
export type { PolicyError } from './errors.ts';
export {
  callersOf,
  dataServices,
  edgeWorkloads,
  matchesPathTemplate,
  namespaceOf,
  pathTemplateRegex,
  routesOf,
  scopesForRoles,
  spiffeId,
  workloadBySpiffeId,
} from './identity.ts';
export type { DataService } from './identity.ts';
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
  HttpMethod,
  IdentityProvider,
  KafkaTopic,
  Model,
  ModelInput,
  MtlsSetting,
  PortSpec,
  Protocol,
  Route,
  RouteAuth,
  Workload,
} from './schema.ts';
export {
  cassandraSystemKeyspaces,
  minJustificationLength,
  parseModel,
  validateModel,
} from './validate.ts';
export type { ModelResult, ValidModel } from './validate.ts';
