// The controller side of controller-process.ts: `node controller-child.js <tree root> <.ts|.js>
// <kubeconfig>` runs the controller of that tree as bin/plugin-release.js does (the module hook first)
// and reports its resource use as JSON lines on stdout. Plain JavaScript, so that measuring the build
// loads no type stripper.
import { subscribe } from 'node:diagnostics_channel';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import pino from 'pino';

const [root, ext, kubeconfig] = process.argv.slice(2);
if (!kubeconfig) {
  process.stderr.write('usage: controller-child.js <tree root> <.ts|.js> <kubeconfig>\n');
  process.exit(2);
}
const load = (module) => import(pathToFileURL(`${root}/src/${module}${ext}`).href);

let connections = 0;
// node:net announces every client socket it connects here, TLS or not.
subscribe('net.client.socket', () => {
  connections++;
});

/**
 * The most this process has had resident: VmHWM, its own memory's high-water mark (Linux). Not
 * getrusage's maxrss, which Linux can carry over at exec from the forked copy of the parent: spawned
 * by the benchmark's process, whose dev cluster holds thousands of objects, a controller whose VmHWM
 * stayed at 86 MB reported a maxrss of 230 MB.
 */
function peakRssBytes() {
  const hwm = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return Number(hwm?.[1]) * 1024;
}

/** A ProcessSample (controller-process.ts). */
function sample(event) {
  const cpu = process.cpuUsage();
  const memory = process.memoryUsage();
  return {
    event,
    uptimeSeconds: process.uptime(),
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    rssBytes: memory.rss,
    maxRssBytes: peakRssBytes(),
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    connections,
  };
}

const report = (event) => process.stdout.write(`${JSON.stringify(sample(event))}\n`);

(await load('kube/loader')).narrowClientNode();
const [{ startController }, { loadKubeConfig }] = await Promise.all([
  load('controller/manager'),
  load('kube/index'),
]);
const logger = pino({ level: process.env.BENCH_CONTROLLER_LOG_LEVEL ?? 'warn' }, pino.destination(2));
const controller = await startController({ kubeConfig: loadKubeConfig(kubeconfig), logger });
report('ready');
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  const command = line.trim();
  if (command === 'gc') globalThis.gc?.();
  if (command === 'sample' || command === 'gc') report('sample');
});
let stopping = false;
process.on('SIGTERM', () => {
  if (stopping) return;
  stopping = true;
  lines.close();
  void controller.stop().finally(() => {
    report('stopped');
    process.exit(0);
  });
});
