/**
 * 10,000 idle WebSockets through the balancer: what the master and the
 * workers hold for them, and the latency of new connections meanwhile.
 * Master memory from its own metrics (RSS, V8 heap used and total) after each
 * cycle of opening and closing them, then with them held; worker RSS per
 * held socket; p50/p99 of 300 sequential new-connection GETs with none and
 * with all of them open.
 *
 *   npm run build && node dist/bench/idle-websockets.js [count] [warm cycles]
 */
import { getText, processStats, startMaster, timedGet } from './lib/master.js';
import { closeAll, openWebSockets } from './lib/websockets.js';

const COUNT = Number(process.argv[2] ?? 10_000);
const CYCLES = Number(process.argv[3] ?? 3);

async function masterMemory(adminPort: number): Promise<string> {
  const text = await getText(adminPort, '/metrics');
  const value = (name: string): string => ((Number(new RegExp(`^${name}\\{process="master"\\} (\\S+)`, 'm').exec(text)?.[1] ?? 0) / 2 ** 20).toFixed(1));
  return `RSS ${value('process_resident_memory_bytes')} MiB, heap used ${value('nodejs_heap_size_used_bytes')} of ${value('nodejs_heap_size_total_bytes')} MiB`;
}

async function latencies(port: number): Promise<string> {
  const times: number[] = [];
  for (let i = 0; i < 300; i++) times.push(await timedGet(port));
  times.sort((a, b) => a - b);
  return `p50 ${(times[150] as number).toFixed(2)} ms, p99 ${(times[296] as number).toFixed(2)} ms`;
}

async function main(): Promise<void> {
  const master = await startMaster();
  try {
    const workers = (JSON.parse(await getText(master.adminPort, '/workers')) as Array<{ pid: number }>).map((worker) => worker.pid);
    console.log(`${COUNT} idle WebSockets, ${CYCLES} warm cycles, node ${process.version}`);
    console.log(`start: master ${await masterMemory(master.adminPort)}`);
    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      await closeAll(await openWebSockets(master.port, COUNT));
      console.log(`after cycle ${cycle} (opened and closed): master ${await masterMemory(master.adminPort)}, ${processStats(master.proc.pid as number).fds} descriptors`);
    }
    console.log(`none held: new connections ${await latencies(master.port)}`);
    const workersBefore = workers.map((pid) => processStats(pid).rssMB);
    const masterFds = processStats(master.proc.pid as number).fds;
    const sockets = await openWebSockets(master.port, COUNT);
    const workersAfter = workers.map((pid) => processStats(pid).rssMB);
    const perSocketKiB = ((workersAfter.reduce((a, b) => a + b, 0) - workersBefore.reduce((a, b) => a + b, 0)) * 1024) / COUNT;
    console.log(
      `with ${COUNT} held: master ${await masterMemory(master.adminPort)}, descriptors ${masterFds} → ${processStats(master.proc.pid as number).fds}; ` +
        `workers RSS ${workersBefore.join(' + ')} → ${workersAfter.join(' + ')} MiB (${perSocketKiB.toFixed(1)} KiB per socket); new connections ${await latencies(master.port)}`,
    );
    await closeAll(sockets);
  } finally {
    await master.stop();
  }
}

void main();
