import { Client, policies, types } from 'cassandra-driver';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clusterReplication, type CassandraCluster } from '../src/harness/cassandra-cluster.ts';
import {
  startPodCassandraCluster,
  type PodCassandraCluster,
} from '../src/harness/cassandra-pod-cluster.ts';
import type { NodeCut } from '../src/harness/pod-cut.ts';
import { cassandraRetrier, waitFor } from './support/cassandra-retry.ts';

// A network partition (issue 13, item 3): the same 3-node Cassandra 5.0 cluster as
// cassandra-cluster.faults.test.ts (ADR 0028: internode and client mTLS, RF 3), but each node in a pod
// of its own (ADR 0012: a network namespace this test makes, and a user), on the pods' bridge. Node 3
// is cut off from its peers and from the clients for 30 s by taking its pod's link down inside its
// namespace, its process still running; a steady LOCAL_QUORUM writer goes on meanwhile. Then: the
// node back UN without a restart, the hints its peers kept replayed to it, and every acknowledged
// write read back at LOCAL_QUORUM through the cluster and through node 3 alone.
const TD = 'spiffe://trellis.test';
const ORDERS_ID = `${TD}/ns/orders/sa/orders-api`;
const CUT_MS = 30_000;
const VICTIM = 3;

let pc: PodCassandraCluster | undefined;
const fileStart = Date.now();
const loadavg = (): string => execFileSync('uptime', { encoding: 'utf8' }).trim();

function pcs(): PodCassandraCluster {
  if (!pc) throw new Error('the Cassandra cluster did not start');
  return pc;
}
function live(): CassandraCluster {
  return pcs().cluster;
}

beforeAll(async () => {
  pc = await startPodCassandraCluster({
    stack: 'cpart',
    subnetBasePort: 48_000, // 198.18.48.0/24
    trustDomain: TD,
    clients: { 'orders-api': ORDERS_ID },
    bootstrap: [
      'CREATE ROLE orders_api WITH LOGIN = true',
      `ADD IDENTITY '${ORDERS_ID}' TO ROLE 'orders_api'`,
    ],
  });
  console.info(
    `cassandra cluster in pods (${[1, 2, 3].map((i) => pcs().address(i)).join(', ')}): 3 nodes UN ` +
      `and system_auth replicated in ${pc.cluster.startupMs} ms (per node to first CQL answer: ` +
      `${pc.cluster.nodeStartupMs.join(', ')} ms); ${loadavg()}`,
  );
}, 600_000);

afterAll(async () => {
  await pc?.stop();
  console.info(
    `cassandra-partition.extended.test.ts: ${Date.now() - fileStart} ms wall; ${loadavg()}`,
  );
});

describe('a 3-node Cassandra cluster in pods, one node cut off from its peers', () => {
  it('runs each node in its own pod, at its pod address, all UN', async () => {
    const c = live();
    expect(c.nodes.map((s) => s.host)).toEqual([1, 2, 3].map((i) => pcs().address(i)));
    // Each JVM runs as its pod's user, in its pod's network namespace.
    for (const [k, s] of c.nodes.entries()) {
      const status = readFileSync(`/proc/${s.process.pid}/status`, 'utf8');
      expect(/Uid:\s+(\d+)/.exec(status)?.[1]).toBe(String(pcs().pod(k + 1).uid));
      const ns = execFileSync('ip', ['netns', 'identify', String(s.process.pid)], {
        encoding: 'utf8',
      }).trim();
      expect(ns).toBe(pcs().pod(k + 1).netns);
    }
    expect(Object.fromEntries(await c.status(0))).toEqual(
      Object.fromEntries([1, 2, 3].map((i) => [pcs().address(i), 'UN'])),
    );
  });

  it('acknowledges and keeps every LOCAL_QUORUM write while node 3 is cut off for 30 s, and the node rejoins without a restart', async () => {
    const c = live();
    const victimAddress = pcs().address(VICTIM);
    const admin = new Client(c.clientOptions(pcs().credentials('admin')));
    try {
      await admin.connect();
      await admin.execute(`CREATE KEYSPACE partition WITH replication = ${clusterReplication(3)}`);
      await admin.execute('CREATE TABLE partition.acks (id int PRIMARY KEY, v text)');
      await admin.execute('GRANT SELECT ON KEYSPACE partition TO orders_api');
      await admin.execute('GRANT MODIFY ON KEYSPACE partition TO orders_api');
    } finally {
      await admin.shutdown();
    }
    const ordersCreds = pcs().credentials('orders-api');
    const localQuorum = {
      prepare: true,
      consistency: types.consistencies.localQuorum,
      isIdempotent: true,
    };
    const app = new Client(c.clientOptions(ordersCreds));
    /** Each acknowledged write: when its ack came, and how long it took (retries included). */
    const acked: { id: number; at: number; ms: number }[] = [];
    let cut: NodeCut | undefined;
    const since = (): string => (cut ? `+${Date.now() - cut.at} ms` : 'before the cut');
    const { retried, failed, driverLog, recordLog, withRetry } = cassandraRetrier(since);
    recordLog(app, 'app');
    const write = async (id: number): Promise<void> => {
      const t0 = Date.now();
      const ok = await withRetry(app, `write ${id}`, () =>
        app.execute(
          'INSERT INTO partition.acks (id, v) VALUES (?, ?)',
          [id, `v${id}`],
          localQuorum,
        ),
      );
      if (ok) acked.push({ id, at: Date.now(), ms: Date.now() - t0 });
    };
    const victimPid = c.nodes[VICTIM - 1]?.process.pid ?? 0;
    let downAt = 0;
    let polls = 0;
    let poller: Promise<void> = Promise.resolve();
    try {
      await app.connect();
      let id = 0;
      for (; id < 50; id++) await write(id);
      expect(failed).toEqual([]);
      expect(app.hosts.keys().sort()).toEqual([...c.contactPoints].sort());
      expect(app.hosts.values().map((h) => h.isUp())).toEqual([true, true, true]);

      const theCut = pcs().cut(VICTIM, CUT_MS);
      cut = theCut;
      // Node 1's view of node 3, polled during the cut (each nodetool is a JVM in node 1's pod):
      // at most 60 polls, and none after the heal.
      poller = (async () => {
        while (!downAt && !theCut.healedAt && polls < 60) {
          polls++;
          const st = await c.status(0).catch(() => new Map<string, string>());
          if (st.get(victimAddress) === 'DN' && !theCut.healedAt) downAt = Date.now();
          else await new Promise((r) => setTimeout(r, 500));
        }
      })();
      // Bounded: at most 3,000 writes and 150 s; writes go on until 10 s after the heal.
      while (id < 3_050 && Date.now() - theCut.at < 150_000) {
        if (theCut.healedAt && Date.now() - theCut.healedAt > 10_000) break;
        await write(id++);
        await new Promise((r) => setTimeout(r, 20));
      }
    } catch (err) {
      await app.shutdown();
      throw err;
    } finally {
      cut?.heal();
      await poller;
    }
    if (!cut) throw new Error('node 3 was never cut off');
    const { at: cutAt, healedAt } = cut;
    expect(healedAt - cutAt).toBeGreaterThanOrEqual(CUT_MS - 50);
    const before = acked.filter((a) => a.at < cutAt).length;
    const during = acked.filter((a) => a.at >= cutAt && a.at < healedAt).length;
    const after = acked.length - before - during;
    const slowest = Math.max(...acked.filter((a) => a.at >= cutAt).map((a) => a.ms));

    try {
      // Node 1 sees node 3 up again, and its peers replay the hints they kept (both watched at once,
      // each timed from the heal), then node 3 sees its peers up.
      const hintsReplayed = new RegExp(
        `Finished hinted handoff of file \\S+ to endpoint /${victimAddress.replace(/\./g, '\\.')}:`,
      );
      const [upMs, hintsMs] = await Promise.all([
        waitFor(
          async () => (await c.status(0)).get(victimAddress) === 'UN',
          'node 1 to see node 3 UN',
        ).then(() => Date.now() - healedAt),
        waitFor(
          async () =>
            [0, 1].some((k) => hintsReplayed.test(readFileSync(c.nodes[k]?.logFile ?? '', 'utf8'))),
          'hints replayed to node 3',
        ).then(() => Date.now() - healedAt),
      ]);
      await waitFor(
        async () => [...(await c.status(VICTIM - 1)).values()].every((s) => s === 'UN'),
        'node 3 to see every node UN',
      );

      // (a) The same process: cut off, not restarted.
      expect(c.nodes[VICTIM - 1]?.process.pid).toBe(victimPid);
      expect(c.nodes[VICTIM - 1]?.process.running).toBe(true);

      const readAll = async (client: Client): Promise<number[]> => {
        const missing: number[] = [];
        const readsBefore = retried.length;
        for (const { id } of acked) {
          const rs = await withRetry(client, `read ${id}`, () =>
            client.execute('SELECT v FROM partition.acks WHERE id = ?', [id], localQuorum),
          );
          if (rs?.first()?.get('v') !== `v${id}`) missing.push(id);
        }
        if (retried.length > readsBefore)
          console.info(`reads retried:\n${retried.slice(readsBefore).join('\n')}`);
        return missing;
      };
      const missingAll = await readAll(app);
      // Reads coordinated by node 3 alone.
      const victimPoint = c.contactPoints[VICTIM - 1] ?? '';
      const viaNode3 = new Client({
        ...c.clientOptions(ordersCreds),
        contactPoints: [victimPoint],
        policies: {
          loadBalancing: new policies.loadBalancing.AllowListPolicy(
            new policies.loadBalancing.DCAwareRoundRobinPolicy(c.localDataCenter),
            [victimPoint],
          ),
        },
      });
      recordLog(viaNode3, 'via-node-3');
      let missingVia3: number[] = [];
      try {
        await viaNode3.connect();
        // In the driver's JS, not its typings.
        const meta = viaNode3.metadata as unknown as { checkSchemaAgreement(): Promise<boolean> };
        await waitFor(() => meta.checkSchemaAgreement(), 'schema agreement with node 3', 60_000);
        missingVia3 = await readAll(viaNode3);
      } finally {
        await viaNode3.shutdown();
      }

      console.info(
        `cut node 3 (${victimAddress}) off for ${healedAt - cutAt} ms: ${acked.length} writes acknowledged ` +
          `(${before} before, ${during} during the cut, ${after} after), ${retried.length} retried, ` +
          `${failed.length} failed, slowest ${slowest} ms; DN in node 1's status after ${downAt ? downAt - cutAt : 'never'} ms ` +
          `(${polls} polls); UN again ${upMs} ms after the heal, hints replayed after ${hintsMs} ms; ` +
          `missing on read-back ${missingAll.length} (cluster), ${missingVia3.length} (via node 3); ` +
          loadavg(),
      );
      if (failed.length) console.info(`failed writes:\n${failed.join('\n')}`);
      if (retried.length)
        console.info(`requests retried before their answer:\n${retried.join('\n')}`);
      // (b) Writes went on during the cut, through the two connected nodes.
      expect(during).toBeGreaterThan(0);
      // (c) None failed (retries allowed, printed above).
      expect(failed).toEqual([]);
      // (d) Every acknowledged write, at LOCAL_QUORUM, through the cluster and through node 3.
      expect(missingAll).toEqual([]);
      expect(missingVia3).toEqual([]);
      // (e) Node 1 saw node 3 down during the cut.
      expect(downAt).toBeGreaterThan(0);
    } catch (err) {
      // What the nodes logged about each other: gossip, the failure detector, hints.
      for (const [k, s] of c.nodes.entries()) {
        const lines = readFileSync(s.logFile, 'utf8')
          .split('\n')
          .filter((l) => /Gossiper|FailureDetector|Hint|is now (DOWN|UP)|ERROR|WARN/.test(l))
          .slice(-40);
        console.info(`node ${k + 1} log (${s.logFile}), last relevant lines:\n${lines.join('\n')}`);
      }
      throw err;
    } finally {
      if (retried.length || failed.length)
        console.info(
          `the driver's log (kept when a request was retried):\n${driverLog.join('\n')}`,
        );
      await app.shutdown();
    }
  }, 600_000);
});
