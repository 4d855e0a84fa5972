/** Detached per-component supervisors: restart on crash, stop the whole process group. */
export { alive, readState, startSupervised, stopSupervised, supervisedStatus } from './client.ts';
export type { SuperviseSpec, SuperviseState } from './spec.ts';
