// Runs the reference plugin host (test/fixtures/reference-host/host.ts) as a real process, and writes
// the configs and plugins it understands into a staging directory with their digests.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import http from 'node:http';
import { dirname, join } from 'node:path';
import { digestPath } from '../../src/agent/digest.ts';
import { MANAGED_MARKER } from '../../src/agent/host/install.ts';
import { exited } from './processes.ts';

const HOST = join(import.meta.dirname, '../fixtures/reference-host/host.ts');

export interface HostModule {
  name?: string;
  type: string;
  failStart?: boolean;
  unhealthyAfterMs?: number;
}

/** What the reference host says it runs (GET /api/workflow/status). */
export interface HostState {
  config: string | null;
  configDigest: string | null;
  activations: number;
  tryActivations: number;
  plugins: Record<string, string>;
}

export interface ReferenceHost {
  /** The spec.host.url that reaches it. */
  url: string;
  pluginsDir: string;
  child: ChildProcess;
  state(): Promise<HostState>;
  stop(): Promise<void>;
}

/**
 * Starts a reference host listening on the unix socket `<dir>/admin.sock`, with `<dir>/plugins` as its
 * plugins directory (marked as managed), running the config "initial" (one http.server) at first; with
 * `tokenFile`, its admin endpoints want that bearer token.
 */
export async function startReferenceHost(
  dir: string,
  options: { tokenFile?: string } = {},
): Promise<ReferenceHost> {
  const pluginsDir = join(dir, 'plugins');
  await mkdir(pluginsDir, { recursive: true });
  await writeFile(join(pluginsDir, MANAGED_MARKER), '');
  const config = join(dir, 'initial.json');
  await writeFile(config, JSON.stringify({ name: 'initial', modules: [{ type: 'http.server' }] }));
  const socket = join(dir, 'admin.sock');
  const child = spawn(
    process.execPath,
    [
      HOST,
      '--listen',
      `unix:${socket}`,
      '--config',
      config,
      '--plugins',
      pluginsDir,
      ...(options.tokenFile ? ['--token-file', options.tokenFile] : []),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('LISTENING')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the reference host exited with ${code}`)));
  });
  return {
    url: `unix://${socket}`,
    pluginsDir,
    child,
    state: async () => JSON.parse(await get(socket, '/api/workflow/status')) as HostState,
    async stop() {
      child.kill('SIGTERM');
      await exited(child);
    },
  };
}

function get(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ socketPath, path }, (res) => {
        let body = '';
        res.on('data', (c) => {
          body += c;
        });
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

/** Writes a reference-host config named `name` and returns it as a release's spec.config. */
export async function hostConfig(
  path: string,
  name: string,
  modules: HostModule[] = [{ type: 'http.server' }],
) {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify({ name, modules })}\n`);
  return { path, digest: await digestPath(path) };
}

/** Writes a reference-host plugin directory and returns it as a release's spec.artifact. */
export async function hostPlugin(
  dir: string,
  manifest: { name: string; version: string; moduleTypes?: string[]; failLoad?: boolean },
) {
  await mkdir(join(dir, 'lib'), { recursive: true });
  await writeFile(join(dir, 'plugin.json'), `${JSON.stringify(manifest)}\n`);
  await writeFile(
    join(dir, 'lib', 'module.js'),
    `// ${manifest.name} ${manifest.version}\nexport default {};\n`,
  );
  return { path: dir, digest: await digestPath(dir) };
}

/** Every entry under `dir` with its type, mode and bytes (or link target): equal trees are equal bytes. */
export async function treeOf(dir: string): Promise<Record<string, string>> {
  const { lstat, readdir, readFile, readlink } = await import('node:fs/promises');
  const tree: Record<string, string> = {};
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(dir, rel))).sort()) {
      const path = join(rel, name);
      const st = await lstat(join(dir, path));
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isDirectory()) {
        tree[path] = `dir ${mode}`;
        await walk(path);
      } else if (st.isSymbolicLink()) tree[path] = `link ${await readlink(join(dir, path))}`;
      else tree[path] = `file ${mode} ${(await readFile(join(dir, path))).toString('base64')}`;
    }
  };
  await walk('');
  return tree;
}
