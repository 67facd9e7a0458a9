// Helpers for the CLI tests: run a real executable without blocking the event loop (the dev cluster
// serves from this very process), put the kubectl plugin on a PATH, and poll for a condition.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';

export const REPO = join(import.meta.dirname, '../../..');
/** Node 24 from the `node` devDependency: the system node may be too old to strip types. */
export const NODE = join(REPO, 'node_modules/.bin/node');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * A bound against a hung child, not a pass/fail timer: a CLI that starts Node and @kubernetes/client-node
 * takes seconds on a busy 2-core machine, so this is far above what any command needs.
 */
const HUNG_AFTER_MS = 120_000;

/**
 * Runs `file args` to completion with exactly `env` (nothing inherited but the test run's TMPDIR, so
 * what the child creates stays where the suite's teardown looks), and resolves with its exit code and
 * output, whatever the code: asynchronous, so an in-process API server keeps answering.
 */
export function runProcess(file: string, args: string[], env: Record<string, string>): Promise<Run> {
  const withTmp = process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR, ...env } : env;
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { env: withTmp, timeout: HUNG_AFTER_MS, encoding: 'utf8' },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(error);
        resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
      },
    );
  });
}

/** The first `name` on the PATH, or undefined. */
export function onPath(name: string, path = process.env.PATH ?? ''): string | undefined {
  return path
    .split(delimiter)
    .map((dir) => join(dir, name))
    .find((file) => existsSync(file));
}

/**
 * A fresh directory holding an executable `kubectl-pluginrelease` that runs bin/kubectl-pluginrelease.js
 * on the repository's Node 24: what a user gets by putting the plugin on PATH.
 */
export async function pluginBinDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'kubectl-plugin-bin-'));
  const file = join(dir, 'kubectl-pluginrelease');
  const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  await writeFile(
    file,
    `#!/bin/sh\nexec ${quote(NODE)} ${quote(join(REPO, 'bin/kubectl-pluginrelease.js'))} "$@"\n`,
  );
  await chmod(file, 0o755);
  return dir;
}

/** Polls `probe` every 100 ms until it returns a value other than undefined; rejects after `timeoutMs`. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${String(last)}` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

export type Kubectl = (args: string[], env?: Record<string, string | undefined>) => Promise<Run>;

/**
 * `kubectl pluginrelease <args>` as a user runs it: the real kubectl, the plugin on PATH, KUBECONFIG
 * set to `kubeconfig` and an empty HOME (so no ~/.kube/config leaks in). `env` adds to or, with
 * undefined, removes from that environment.
 */
export function kubectlPlugin(kubectl: string, binDir: string, home: string, kubeconfig: string): Kubectl {
  return (args, env = {}) =>
    runProcess(kubectl, ['pluginrelease', ...args], kubectlEnv(binDir, home, kubeconfig, env));
}

/** The environment `kubectlPlugin` runs kubectl with (see there). */
export function kubectlEnv(
  binDir: string,
  home: string,
  kubeconfig: string,
  env: Record<string, string | undefined> = {},
): Record<string, string> {
  const merged = {
    PATH: `${binDir}${delimiter}${process.env.PATH}`,
    HOME: home,
    KUBECONFIG: kubeconfig,
    TMPDIR: process.env.TMPDIR,
    ...env,
  };
  return Object.fromEntries(Object.entries(merged).filter((e): e is [string, string] => e[1] !== undefined));
}
