// `plugin-release devcluster`: runs the in-process dev Kubernetes API server until SIGINT/SIGTERM.
import { chmod, copyFile, mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { startDevCluster } from '../cluster/index.ts';

export const help = `Usage: plugin-release devcluster --kubeconfig-out <path> [--port N] [--nodes N] [--dir <path>] [--watch-history N]

Runs a dev Kubernetes API server on 127.0.0.1 (HTTPS, bearer token) that serves the pluginrelease.io
CRDs, Namespaces, Nodes, Events and Leases, with simulated nodes. Prints one line when ready:

  devcluster ready: <server url> kubeconfig=<path> nodes=<n> dir=<dir>

and runs until SIGINT or SIGTERM. See docs/devcluster.md.

Flags:
  --kubeconfig-out <path>  Where to write the kubeconfig (context "devcluster", namespace "default").
  --port N                 Port to listen on (default: an ephemeral port).
  --nodes N                Simulated nodes node-1..node-N (default 3), each with a root and a staging dir.
  --dir <path>             Where node directories live (default: a temporary dir removed on exit).
  --watch-history N        Events kept for watch resume; older resourceVersions get 410 Gone (default 1000).

Example:
  plugin-release devcluster --kubeconfig-out /tmp/dev.kubeconfig --nodes 5 &
  kubectl --kubeconfig /tmp/dev.kubeconfig apply -f examples/minimal.yaml`;

function count(value: string | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value)) throw new Error(`${flag} must be a non-negative integer, got "${value}"`);
  return Number(value);
}

export async function main(argv: string[]): Promise<number> {
  let options: { out: string; port: number; nodes: number; dir?: string; watchHistory: number };
  try {
    const { values, positionals } = parseArgs({
      args: argv,
      options: {
        'kubeconfig-out': { type: 'string' },
        port: { type: 'string' },
        nodes: { type: 'string' },
        dir: { type: 'string' },
        'watch-history': { type: 'string' },
      },
      allowPositionals: true,
    });
    if (positionals.length > 0) throw new Error(`unexpected argument "${positionals[0]}"`);
    if (!values['kubeconfig-out']) throw new Error('--kubeconfig-out is required');
    options = {
      out: resolve(values['kubeconfig-out']),
      port: count(values.port, '--port', 0),
      nodes: count(values.nodes, '--nodes', 3),
      dir: values.dir ? resolve(values.dir) : undefined,
      watchHistory: count(values['watch-history'], '--watch-history', 1000),
    };
  } catch (error) {
    console.error(`plugin-release devcluster: ${(error as Error).message}\n\n${help}`);
    return 1;
  }

  let cluster: Awaited<ReturnType<typeof startDevCluster>>;
  try {
    cluster = await startDevCluster({
      port: options.port,
      nodes: options.nodes,
      dir: options.dir,
      watchHistory: options.watchHistory,
    });
    await mkdir(dirname(options.out), { recursive: true });
    await copyFile(cluster.kubeconfigPath, options.out);
    await chmod(options.out, 0o600);
  } catch (error) {
    console.error(`plugin-release devcluster: ${(error as Error).message}`);
    return 1;
  }

  const signal = await new Promise<string>((done) => {
    process.once('SIGINT', () => done('SIGINT'));
    process.once('SIGTERM', () => done('SIGTERM'));
    console.log(
      `devcluster ready: ${cluster.url} kubeconfig=${options.out} nodes=${cluster.nodes.length} dir=${cluster.dir}`,
    );
  });
  await cluster.stop();
  console.error(`plugin-release devcluster: stopped on ${signal}`);
  return 0;
}
