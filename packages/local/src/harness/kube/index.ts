/** A loopback Kubernetes control plane for tests (etcd, API server, controller manager, scheduler, kwok). */
export { startKubeControlPlane } from './cluster.ts';
export type { KubeControlPlane, KubeControlPlaneOptions } from './cluster.ts';
export { KubeClient, KubeApiError } from './client.ts';
export type { KubeClientOptions, KubeResponse } from './client.ts';
export {
  apiserverArgs,
  controllerManagerArgs,
  egressSelectorConfig,
  etcdArgs,
  fakeNode,
  kubeconfig,
  kwokArgs,
  schedulerArgs,
  DISABLED_ADMISSION_PLUGINS,
  KWOK_NODE_ANNOTATION,
  POD_CIDR,
  SERVICE_ACCOUNT_ISSUER,
  SERVICE_CIDR,
} from './config.ts';
export type { ControlPlaneFiles } from './config.ts';
export { startEgressTrap } from './egress.ts';
export type { EgressTrap } from './egress.ts';
export { writeControlPlanePki, APISERVER_SANS } from './pki.ts';
export type { ClientFiles, ControlPlanePki } from './pki.ts';
