/**
 * What the JMX exporter agent costs a data node: start-up time, idle CPU and resident memory of one
 * Cassandra and one Kafka node, without and with the agent (plaintext, no auth, the harness's
 * defaults), and the CPU of one scrape of the agent's `/metrics`. One run of each, in the order
 * Cassandra off/on, Kafka off/on (`on-first`: on/off). Run it under the component lock
 * (docs/observability.md):
 *
 *   flock /work/notes/component.lock node packages/local/bench/jmx-agent-cost.ts [idleSeconds] [on-first]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startCassandra } from '../src/harness/cassandra.ts';
import { startKafka } from '../src/harness/kafka.ts';
import { freePort } from '../src/harness/ports.ts';

const idleSeconds = Number(process.argv[2] ?? 30);
const settleSeconds = 10;
const scrapes = 10;
const tick = 100; // USER_HZ on Linux

function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the command name.
  return ((Number(f[11]) + Number(f[12])) * 1000) / tick;
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Math.round(Number(m?.[1] ?? 0) / 1024);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function measure(node: 'cassandra' | 'kafka', agent: boolean): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), `trellis-jmx-cost-${node}-`));
  const port = await freePort('127.0.0.1');
  const jmxExporter = agent ? { port } : undefined;
  const server =
    node === 'cassandra'
      ? await startCassandra({ dir: join(root, 'n'), ...(jmxExporter ? { jmxExporter } : {}) })
      : await startKafka({
          dir: join(root, 'n'),
          heapMb: 256,
          ...(jmxExporter ? { jmxExporter } : {}),
        });
  try {
    const pid = server.process.pid;
    await sleep(settleSeconds * 1000);
    const c0 = cpuMs(pid);
    await sleep(idleSeconds * 1000);
    const idle = cpuMs(pid) - c0;
    let perScrape = '';
    if (agent) {
      const s0 = cpuMs(pid);
      let bytes = 0;
      for (let i = 0; i < scrapes; i++)
        bytes = (await (await fetch(`http://127.0.0.1:${port}/metrics`)).text()).length;
      perScrape = ` scrape=${((cpuMs(pid) - s0) / scrapes).toFixed(1)}ms-cpu (${bytes} bytes)`;
    }
    console.log(
      `${node} agent=${agent ? 'on ' : 'off'} startup=${server.startupMs}ms idle=${((idle / (idleSeconds * 1000)) * 100).toFixed(2)}%cpu (${idle.toFixed(0)}ms in ${idleSeconds}s) rss=${rssMiB(pid)}MiB${perScrape}`,
    );
  } finally {
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

for (const node of ['cassandra', 'kafka'] as const)
  for (const agent of process.argv[3] === 'on-first' ? [true, false] : [false, true])
    await measure(node, agent);
