// Starts the example echo plugin directly (no agent), for benchmarks that need a live backend.
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const EXAMPLE = join(import.meta.dirname, '../../examples/plugins/echo/echo-plugin.ts');

export interface RunningPlugin {
  socketPath: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/** Copies the example into `dir` as `version` and starts it; resolves once it handshakes. */
export async function startExamplePlugin(dir: string, version: string): Promise<RunningPlugin> {
  mkdirSync(dir, { recursive: true });
  copyFileSync(EXAMPLE, join(dir, 'echo-plugin.ts'));
  writeFileSync(join(dir, 'VERSION'), `${version}\n`);
  const child = spawn(process.execPath, [join(dir, 'echo-plugin.ts')], {
    env: {
      PATH: process.env.PATH,
      PLUGIN_RELEASE_MAGIC_COOKIE: 'b3a1c5d2-plugin-release',
      PLUGIN_PROTOCOL_VERSIONS: '1',
      PLUGIN_UNIX_SOCKET_DIR: dir,
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`example plugin exited ${code} before its handshake`)));
  });
  const socketPath = line.split('|')[3]!;
  return {
    socketPath,
    child,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
