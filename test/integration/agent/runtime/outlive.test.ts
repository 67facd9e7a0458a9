// A plugin outlives its SIGKILLed agent, and the next agent adopts it by pid and start time.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  adoptPlugin,
  isSameProcess,
  type PluginProcessRecord,
  PROCESS_RECORD,
  readProcessIdentity,
  stopOrphan,
} from '../../../../src/agent/runtime/index.ts';
import { stageFixture } from '../../../support/plugins.ts';

const AGENT = fileURLToPath(new URL('./agent-child.ts', import.meta.url));
let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'pr-outlive-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

function version(address: string): Promise<string> {
  const i = address.lastIndexOf(':');
  return new Promise((resolve, reject) => {
    http
      .get(
        { host: address.slice(0, i), port: Number(address.slice(i + 1)), path: '/', agent: false },
        (res) => {
          res.resume();
          resolve(String(res.headers['x-plugin-version']));
        },
      )
      .on('error', reject);
  });
}

it('keeps the plugin serving after the agent is SIGKILLed, and a new agent adopts and stops it', async () => {
  const fixture = await stageFixture(join(root, 'staging'), { version: '3.1.4' });
  const runDir = join(root, 'run');
  const agent = spawn(process.execPath, [AGENT, runDir, fixture.entrypointPath, fixture.path], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const line = await new Promise<string>((resolve, reject) => {
    let out = '';
    agent.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('\n')) resolve(out.split('\n')[0]!);
    });
    agent.once('exit', (code) => reject(new Error(`agent exited with ${code}`)));
  });
  const printed = JSON.parse(line) as PluginProcessRecord;
  const agentGone = new Promise((resolve) => agent.once('exit', resolve));
  agent.kill('SIGKILL');
  await agentGone;

  const record = JSON.parse(await readFile(join(runDir, PROCESS_RECORD), 'utf8')) as PluginProcessRecord;
  expect(record).toEqual(printed);
  expect(await version(record.handshake.address)).toBe('3.1.4');

  const adopted = adoptPlugin(record);
  expect(adopted).toBeDefined();
  await adopted!.stop(1000);
  expect(adoptPlugin(record)).toBeUndefined();
  await expect(version(record.handshake.address)).rejects.toThrow();
});

it('stops a candidate that an agent killed mid-launch left behind', async () => {
  const fixture = await stageFixture(join(root, 'staging'), { mode: 'hang-before-handshake' });
  const runDir = join(root, 'run-orphan');
  const agent = spawn(process.execPath, [AGENT, runDir, fixture.entrypointPath, fixture.path], {
    stdio: 'ignore',
  });
  let identity = readProcessIdentity(runDir);
  while (!identity) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    identity = readProcessIdentity(runDir);
  }
  const agentGone = new Promise((resolve) => agent.once('exit', resolve));
  agent.kill('SIGKILL');
  await agentGone;
  expect(() => process.kill(identity.pid, 0)).not.toThrow();

  expect(await stopOrphan(runDir, 300)).toBe(true);
  // Orphans are reparented to init, so for a moment the dead process may be an unreaped zombie, which
  // kill(pid, 0) still finds: isSameProcess counts zombies as gone.
  expect(isSameProcess(identity.pid, identity.startTime)).toBe(false);
  expect(await stopOrphan(runDir, 300)).toBe(false);
});
