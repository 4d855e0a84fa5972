/**
 * What a 3-node Kafka KRaft cluster (startKafkaCluster, docs/adr/0027-kafka-kraft-cluster.md) costs to
 * start and to keep idle: time from the call to 3 registered brokers (storage formats included),
 * resident memory per node, and the nodes' CPU over an idle window. Alternates the two launch orders
 * (`staggered`, `together`) for `runs` rounds. Run it under the component lock:
 *
 *   flock /work/notes/component.lock node packages/local/bench/kafka-cluster-start.ts [runs] [idleSeconds]
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startKafkaCluster } from '../src/harness/kafka-cluster.ts';
import { CertificateAuthority, writePemFiles } from '../src/harness/tls.ts';

const runs = Number(process.argv[2] ?? 2);
const idleSeconds = Number(process.argv[3] ?? 20);
const tick = 100; // USER_HZ on Linux

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / tick;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
}

const root = mkdtempSync(join(tmpdir(), 'trellis-kafka-cluster-bench-'));
try {
  const ca = await CertificateAuthority.create({ commonName: 'Trellis bench CA' });
  const nodes = [];
  for (const i of [1, 2, 3]) {
    const id = `spiffe://trellis.test/ns/data/sa/kafka-${i}`;
    const f = writePemFiles(
      join(root, 'tls'),
      `kafka-${i}`,
      await ca.issue({ uris: [id], ips: [`127.0.0.${i}`] }),
      ca.rootPem,
    );
    nodes.push({ spiffeId: id, tls: { keystore: f.keystore, truststore: f.truststore } });
  }
  for (let r = 0; r < runs; r++) {
    for (const launch of ['staggered', 'together'] as const) {
      const load = execFileSync('uptime', { encoding: 'utf8' }).trim();
      const t0 = Date.now();
      const c = await startKafkaCluster({ dir: join(root, `${launch}-${r}`), nodes, launch });
      const totalMs = Date.now() - t0;
      try {
        const pids = c.nodes.map((s) => s.process.pid);
        const before = pids.map(cpuMs);
        await new Promise((res) => setTimeout(res, idleSeconds * 1000));
        const cpu = pids.map((p, i) => cpuMs(p) - (before[i] ?? 0));
        const idlePct = cpu.map((ms) => ((ms / (idleSeconds * 1000)) * 100).toFixed(1));
        console.log(
          `${launch}: call to 3 brokers ${totalMs} ms (formats ${c.formatMs} ms summed, ` +
            `first spawn to ready ${c.startupMs} ms); RSS ${pids.map(rssMiB).join(' / ')} MiB; ` +
            `idle CPU over ${idleSeconds} s ${idlePct.join(' / ')} % of a core; at start: ${load}`,
        );
      } finally {
        await c.stop();
      }
    }
  }
} finally {
  rmSync(root, { recursive: true, force: true });
}
