// Issue 11: nothing reaches a workload except through its sidecar, and nothing reaches a server except
// through its client listener. Each row first does the path right from inside the right pod (as the
// pod's user, through the project's pod launcher), then the same bypass from the host and from inside
// every other pod, each of which must fail. The rows come from the stack's bound model, its pods and
// its ports (bypass-plan.ts); a row whose right pod does not exist yet is not generated.
//
// Rows on this branch (e2e stack with trellis-local:pods on; orders-api is the one pod of main):
// - per workload pod: the forged-identity request to its app port, a certificate-less client on each
//   sidecar egress listener (Cassandra, Kafka), its Envoy admin interface, its SVID key (read by every
//   other pod's user: that row needs a second pod);
// - per Kafka client listener (the direct one and one per client workload): a plaintext produce;
// - once the servers are pods (`cassandra`, `kafka`, `keycloak`): Cassandra JMX/nodetool and storage
//   port, Kafka's controller listener, Keycloak's management port.
// The host negatives run as root in the root network namespace: what any process of the machine sees.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PodLaunch } from '@trellis/local/pods';
import type { BoundModel, LocalPortName } from '@trellis/policy';
import { bypassRows, type PodInfo, type Probe } from './bypass-plan.ts';
import { describeProbe, runProbe, type ProbeResult } from './pod-probe.ts';
import { outputs, secretOutputs } from './support.ts';

const o = secretOutputs() as {
  model: BoundModel;
  pods: Record<string, PodInfo & { launch: PodLaunch }>;
  ports: Record<LocalPortName, number>;
};
const pkiRoot = join(outputs().trustBundle, '..');
const stackDir = join(pkiRoot, '..');
const rows = bypassRows({
  model: o.model,
  pods: o.pods,
  ports: o.ports,
  pkiDir: (identity) => join(pkiRoot, identity),
});

describe('bypasses of the sidecars and the servers are refused (issue 11)', () => {
  it('the stack runs pods, so that the table has rows', () => {
    expect(Object.keys(o.pods).length).toBeGreaterThan(0);
    expect(rows.length).toBeGreaterThan(0);
  });

  for (const row of rows)
    it(row.title, async () => {
      const cassandraDir = join(stackDir, 'run', 'cassandra');
      const works = await runProbe(row.works, o.pods, cassandraDir);
      expect(works.ok, `${describeProbe(row.works)}: ${works.detail}`).toBe(true);
      // Four at a time: each probe is a process (two cores, shared).
      const refused: { p: Probe; r: ProbeResult }[] = [];
      for (let i = 0; i < row.refused.length; i += 4)
        refused.push(
          ...(await Promise.all(
            row.refused
              .slice(i, i + 4)
              .map(async (p) => ({ p, r: await runProbe(p, o.pods, cassandraDir) })),
          )),
        );
      // How each bypass ended (refused, reset, closed after what), for the CI log.
      process.stdout.write(
        `${row.title}\n  works: ${describeProbe(row.works)}: ${works.detail}\n` +
          refused.map(({ p, r }) => `  refused: ${describeProbe(p)}: ${r.detail}\n`).join(''),
      );
      const through = refused.filter(({ r }) => r.ok);
      expect(
        through.map(({ p, r }) => `${describeProbe(p)}: ${r.detail}`),
        'bypasses that got through',
      ).toEqual([]);
      if (row.refusedCode !== undefined)
        expect(
          refused
            .filter(({ r }) => r.code !== row.refusedCode)
            .map(({ p, r }) => `${describeProbe(p)}: ${r.detail}`),
          `refused otherwise than with ${row.refusedCode}`,
        ).toEqual([]);
      expect(row.refused.length).toBeGreaterThan(0);
    });
});
