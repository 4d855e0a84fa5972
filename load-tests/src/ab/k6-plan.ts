/** The plan file the A/B gate's k6 script (`k6/gate.ts`) reads: shared by the runner and the script. */

/** One arm as k6 reaches it. */
export interface AbK6Arm {
  name: string;
  sidecarUrl: string;
  floorUrl: string;
}

/** One block: which arm it loads (its scenario's `TRELLIS_GATE_BLOCK` is `index`). */
export interface AbK6Block {
  index: number;
  arm: string;
}

export interface AbK6Plan {
  version: 1;
  tokenUrl: string;
  controlUrl: string;
  /** The header the sidecar forwards the JWT payload in; the floor's requests carry it. */
  payloadHeader: string;
  clientCert: { certFile: string; keyFile: string; domains: string[] };
  arms: AbK6Arm[];
  blocks: AbK6Block[];
  /** k6 options: one scenario per block, no thresholds (the runner judges). */
  options: Record<string, unknown>;
}
