/**
 * The arms of the gate's self-check (its CI test, its bench and `./trellis load --scenario gate`):
 * the compiled sidecar twice (A and A′, the A/A pair whose comparison must pass), once with an
 * injected 2 ms delay (Envoy's HTTP fault filter, added to the compiled bootstrap here, never by the
 * compiler), and once with an app that spins CPU per request (about doubling its CPU per request).
 */
import type { AbComparison } from './run.ts';
import { withFaultDelay, type ArmSpec } from './stack.ts';

/** The injected delay, ms (issue 14). */
export const INJECTED_DELAY_MS = 2;
/**
 * CPU the burn arm's app spins per request, µs: about what the plain app spends per iteration
 * (one sidecar and one floor request) on the reference machine, so its CPU per request doubles.
 */
export const INJECTED_BURN_US = 250;

export const GATE_ARMS: readonly ArmSpec[] = [
  { name: 'A' },
  { name: 'A2' },
  { name: 'delay', envoy: (b) => withFaultDelay(b, INJECTED_DELAY_MS) },
  { name: 'burn', burnUs: INJECTED_BURN_US },
];

export const GATE_COMPARISONS: readonly AbComparison[] = [
  { baseline: 'A', candidate: 'A2' },
  { baseline: 'A', candidate: 'delay' },
  { baseline: 'A', candidate: 'burn' },
];
