/** The harness for real processes: free loopback ports, own data/log dirs, real readiness probes. */
export { ManagedProcess, stopAll } from './process.ts';
export type { StartOptions } from './process.ts';
export { freePort, freePorts } from './ports.ts';
export { waitUntil } from './wait.ts';
export type { WaitOptions } from './wait.ts';
