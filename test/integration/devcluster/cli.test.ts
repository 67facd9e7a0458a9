// `plugin-release devcluster` as a real process: one ready line, a usable kubeconfig, clean exit on SIGTERM.
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';

const BIN = join(import.meta.dirname, '../../../bin/plugin-release.js');
const KUBECTL = '/usr/bin/kubectl';

const cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function startCli(args: string[]) {
  const child = spawn(process.execPath, [BIN, 'devcluster', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanups.push(() => child.kill('SIGKILL'));
  const lines: string[] = [];
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  const ready = new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).on('line', (line) => {
      lines.push(line);
      if (line.startsWith('devcluster ready: ')) resolve(line);
    });
    child.on('exit', (code) => reject(new Error(`exited with ${code} before ready: ${stderr}`)));
  });
  // Tests that expect an early exit never await `ready`.
  ready.catch(() => {});
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, ready, exited, lines, stderr: () => stderr };
}

describe('plugin-release devcluster', () => {
  it('prints one ready line, serves kubectl through the written kubeconfig, and exits 0 on SIGTERM', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'devcluster-cli-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const out = join(dir, 'sub', 'kubeconfig');
    const cli = startCli(['--kubeconfig-out', out, '--nodes', '2']);
    const line = await cli.ready;
    expect(line).toMatch(
      new RegExp(
        `^devcluster ready: https://127\\.0\\.0\\.1:\\d+ kubeconfig=${out.replace(/[.]/g, '\\.')} nodes=2 dir=\\S+$`,
      ),
    );
    expect(existsSync(out)).toBe(true);
    if (existsSync(KUBECTL)) {
      const nodes = await new Promise<string>((resolve, reject) =>
        execFile(KUBECTL, ['--kubeconfig', out, 'get', 'nodes', '-o', 'name'], (error, stdout, stderr) =>
          error ? reject(new Error(stderr)) : resolve(stdout),
        ),
      );
      expect(nodes.trim().split('\n')).toEqual(['node/node-1', 'node/node-2']);
    }
    cli.child.kill('SIGTERM');
    expect(await cli.exited).toBe(0);
    expect(cli.lines).toHaveLength(1);
  });

  it('refuses to start without --kubeconfig-out and prints the usage', async () => {
    const cli = startCli([]);
    expect(await cli.exited).toBe(1);
    expect(cli.stderr()).toContain('--kubeconfig-out is required');
    expect(cli.stderr()).toContain('Usage: plugin-release devcluster');
  });
});
