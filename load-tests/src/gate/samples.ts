/**
 * One block's figures for the gate, from what the block measured. Each figure is taken relative to
 * something measured in the same block, so that what the machine does to every process alike (a
 * busy neighbour, a CPU woken from idle) cancels out:
 *
 * - latency: an Envoy traversal minus a bare mTLS TCP proxy hop (the floor), both sent during the
 *   same block: what Envoy adds beyond moving TLS bytes through one more process;
 * - CPU: each component's CPU time over the block divided by the requests the block sent.
 */
import { median } from './stats.ts';

/** Inputs of {@link floorAdjustedLatency}: request times (ms) through each path during one block. */
export interface FloorSamples {
  /** Through the Envoy traversal under test. */
  traversalMs: readonly number[];
  /** Through the bare mTLS TCP proxy hop (the floor). */
  floorMs: readonly number[];
  /**
   * The i-th traversal and the i-th floor request were sent back to back in one iteration (as the
   * mesh probe does): the figure is then the median of the per-iteration differences, which
   * cancels more noise than the difference of the medians. @default false
   */
  paired?: boolean;
}

function checkTimes(xs: readonly number[], field: string): void {
  if (xs.length === 0) throw new Error(`${field}: no request in the block`);
  const i = xs.findIndex((x) => !(Number.isFinite(x) && x >= 0));
  if (i >= 0) throw new Error(`${field}[${i}]: ${xs[i]} is not a time in ms`);
}

/** The block's traversal cost over the floor, in ms (may be negative when noise wins). */
export function floorAdjustedLatency(s: FloorSamples): number {
  checkTimes(s.traversalMs, 'traversalMs');
  checkTimes(s.floorMs, 'floorMs');
  if (!s.paired) return median(s.traversalMs) - median(s.floorMs);
  if (s.traversalMs.length !== s.floorMs.length)
    throw new Error(
      `floorMs: ${s.floorMs.length} requests, but traversalMs has ${s.traversalMs.length}; paired samples come in pairs`,
    );
  return median(s.traversalMs.map((t, i) => t - (s.floorMs[i] as number)));
}

/**
 * CPU-ms per request of each component over one block: (CPU time after − before) / requests.
 * `before` and `after` are cumulative CPU milliseconds per component (e.g. utime + stime from
 * /proc, as stack-cpu.ts reads them), with the same components.
 */
export function cpuMsPerRequest(
  before: Readonly<Record<string, number>>,
  after: Readonly<Record<string, number>>,
  requests: number,
): Record<string, number> {
  if (!(Number.isInteger(requests) && requests > 0))
    throw new Error(`requests: ${requests} must be a whole number above zero`);
  const out: Record<string, number> = {};
  for (const name of Object.keys(after))
    if (!Object.hasOwn(before, name)) throw new Error(`before["${name}"]: missing`);
  for (const [name, b] of Object.entries(before)) {
    const a = Object.hasOwn(after, name) ? after[name] : undefined;
    if (a === undefined) throw new Error(`after["${name}"]: missing`);
    if (!(Number.isFinite(a) && Number.isFinite(b) && a >= b))
      throw new Error(
        `after["${name}"]: ${a} CPU-ms is below before (${b}); cumulative CPU time never goes back (did the process restart?)`,
      );
    out[name] = (a - b) / requests;
  }
  return out;
}
