// Helpers for agent tests: engines in temp dirs, activation specs for staged fixtures, a request loop.
import { mkdtempSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { NodeEngine } from '../../src/agent/node-engine.ts';
import { PluginActivationSpec, type PluginActivationSpecInput } from '../../src/api/index.ts';
import { type FixtureSettings, type StagedFixture, stageFixture } from './plugins.ts';

export interface AgentWorld {
  base: string;
  root: string;
  staging: string;
  engine: NodeEngine;
  frontSocket: string;
}

export async function anAgent(): Promise<AgentWorld> {
  const base = mkdtempSync(join(tmpdir(), 'agent-'));
  const root = join(base, 'root');
  const staging = join(base, 'staging');
  const engine = new NodeEngine({ root, stagingRoot: staging, logger: pino({ level: 'silent' }) });
  await engine.recover();
  return { base, root, staging, engine, frontSocket: join(root, 'plugins', 'echo', 'front.sock') };
}

/** Stages a fixture and returns an activation spec for it (fast probes; override what a test needs). */
export async function aCandidate(
  world: Pick<AgentWorld, 'staging'>,
  settings: FixtureSettings,
  overrides: Partial<PluginActivationSpecInput> = {},
): Promise<{ fixture: StagedFixture; spec: PluginActivationSpec }> {
  const fixture = await stageFixture(world.staging, settings);
  const version = settings.version ?? '1.0.0';
  const spec = PluginActivationSpec.parse({
    release: { name: 'echo' },
    nodeName: 'node-1',
    plugin: 'echo',
    version,
    revision: `r${fixture.digest!.slice(7, 17)}`,
    artifact: { path: fixture.path, digest: fixture.digest, entrypoint: fixture.entrypoint },
    handshake: { timeoutSeconds: 3 },
    health: { probes: [{ grpc: {}, periodSeconds: 1, failureThreshold: 2 }] },
    activation: { drainSeconds: 1, verifySeconds: 1 },
    ...overrides,
  });
  return { fixture, spec };
}

/** One GET through a unix socket on a fresh connection: the serving version, or an error code. */
export function getVersion(
  socketPath: string,
  timeoutMs = 3000,
): Promise<{ ok: true; version: string } | { ok: false; error: string }> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve(
          res.statusCode === 200
            ? { ok: true, version: String(res.headers['x-plugin-version']) }
            : { ok: false, error: `HTTP ${res.statusCode}` },
        ),
      );
      res.on('error', (e) => resolve({ ok: false, error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ok: false, error: e.code ?? e.message }));
    req.end();
  });
}

/** A client that requests through the front back to back until stopped, counting what it saw. */
export function aRequestLoop(socketPath: string, timeoutMs?: number) {
  const seen = { ok: 0, failed: 0, errors: [] as string[], versions: new Set<string>() };
  let running = true;
  const done = (async () => {
    while (running) {
      const r = await getVersion(socketPath, timeoutMs);
      if (r.ok) {
        seen.ok++;
        seen.versions.add(r.version);
      } else {
        seen.failed++;
        if (seen.errors.length < 5) seen.errors.push(r.error);
      }
    }
  })();
  return {
    seen,
    async stop() {
      running = false;
      await done;
      return seen;
    },
  };
}
