import { readdirSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isSameProcess, readProcessIdentity } from '../../../src/agent/runtime/index.ts';
import { type AgentWorld, aCandidate, anAgent, aRequestLoop } from '../../support/agent-fixtures.ts';
import type { FixtureMode } from '../../support/plugins.ts';

const worlds: AgentWorld[] = [];
async function withV1Active() {
  const world = await anAgent();
  worlds.push(world);
  const v1 = await aCandidate(world, { version: '1.0.0', network: 'unix' });
  const status = await world.engine.activate(v1.spec);
  expect(status.phase).toBe('Active');
  return { world, v1 };
}
afterEach(async () => {
  for (const w of worlds.splice(0)) await w.engine.close(true);
});

const current = (w: AgentWorld) => basename(readlinkSync(join(w.root, 'plugins/echo/current')));
const livePluginProcesses = (w: AgentWorld) =>
  readdirSync(join(w.root, 'plugins/echo/run'))
    .map((d) => readProcessIdentity(join(w.root, 'plugins/echo/run', d)))
    .filter((id) => id && isSameProcess(id.pid, id.startTime));

describe('try-activate on one node', () => {
  it('activates a good candidate: current → new, previous → old, the old process stopped after its drain', async () => {
    const { world, v1 } = await withV1Active();
    const v2 = await aCandidate(world, { version: '2.0.0', network: 'unix' });
    const loop = aRequestLoop(world.frontSocket);
    const status = await world.engine.activate(v2.spec);
    const seen = await loop.stop();
    expect(status).toMatchObject({
      phase: 'Active',
      activeRevision: v2.spec.revision,
      previousRevision: v1.spec.revision,
    });
    expect(current(world)).toBe(v2.spec.revision);
    expect(basename(readlinkSync(join(world.root, 'plugins/echo/previous')))).toBe(v1.spec.revision);
    expect(livePluginProcesses(world)).toHaveLength(1);
    expect(seen.failed).toBe(0);
    expect(seen.versions).toContain('2.0.0');
  });

  it('rolls back to a kept snapshot on request (RollbackFleet): the old revision serves again', async () => {
    const { world, v1 } = await withV1Active();
    const v2 = await aCandidate(world, { version: '2.0.0', network: 'unix' });
    await world.engine.activate(v2.spec);
    const status = await world.engine.activate({ ...v2.spec, rollbackTo: { revision: v1.spec.revision } });
    expect(status).toMatchObject({
      phase: 'Active',
      reason: 'RolledBackToSnapshot',
      revision: v2.spec.revision,
      activeRevision: v1.spec.revision,
    });
    expect(current(world)).toBe(v1.spec.revision);
    const seen = aRequestLoop(world.frontSocket);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect([...(await seen.stop()).versions]).toEqual(['1.0.0']);
  });

  const misbehaving: { mode: FixtureMode; reason: string; requireCapability?: boolean }[] = [
    { mode: 'wrong-cookie', reason: 'PluginExited' },
    { mode: 'bad-handshake', reason: 'HandshakeInvalid' },
    { mode: 'incompatible-protocol', reason: 'ProtocolVersionMismatch' },
    { mode: 'exit-after-handshake', reason: 'PluginExited' },
    { mode: 'hang-before-handshake', reason: 'HandshakeTimeout' },
    { mode: 'never-healthy', reason: 'ProbeFailed' },
    { mode: 'healthy-then-fail', reason: 'VerifyFailed' },
    { mode: 'flood-stdout', reason: 'HandshakeInvalid' },
    { mode: 'missing-capability', reason: 'MissingCapability', requireCapability: true },
  ];

  it.each(misbehaving)(
    'keeps v1 serving when the candidate is $mode: RolledBack with $reason, candidate gone, current unchanged',
    async ({ mode, reason, requireCapability }) => {
      const { world, v1 } = await withV1Active();
      const v2 = await aCandidate(
        world,
        { version: '2.0.0', network: 'unix', mode, failAfterMs: 1500 },
        requireCapability ? { handshake: { timeoutSeconds: 3, requiredCapabilities: ['echo'] } } : {},
      );
      if (mode === 'healthy-then-fail') v2.spec.activation.verifySeconds = 4;
      const loop = aRequestLoop(world.frontSocket);
      const status = await world.engine.activate(v2.spec);
      const seen = await loop.stop();
      expect(status.phase).toBe('RolledBack');
      expect(status.reason).toBe(reason);
      expect(status.message?.length).toBeGreaterThan(20);
      expect(status.activeRevision).toBe(v1.spec.revision);
      expect(current(world)).toBe(v1.spec.revision);
      expect(livePluginProcesses(world)).toHaveLength(1);
      expect(seen.failed).toBe(0);
      expect([...seen.versions]).toEqual(
        mode === 'healthy-then-fail' ? expect.arrayContaining(['1.0.0']) : ['1.0.0'],
      );
    },
  );

  it('serves every request across 20 consecutive TryActivate swaps, and fails some across Recreate swaps', async () => {
    const { world } = await withV1Active();
    const candidates = [];
    for (let i = 0; i < 20; i++) {
      candidates.push(
        await aCandidate(
          world,
          { version: `2.0.${i}`, network: 'unix' },
          { activation: { drainSeconds: 1, verifySeconds: 0 }, health: { probes: [] } },
        ),
      );
    }
    const tryLoop = aRequestLoop(world.frontSocket);
    for (const c of candidates) expect((await world.engine.activate(c.spec)).phase).toBe('Active');
    const tried = await tryLoop.stop();
    expect(tried.failed).toBe(0);
    expect(tried.ok).toBeGreaterThan(20);

    const recreateLoop = aRequestLoop(world.frontSocket);
    for (let i = 0; i < 5; i++) {
      const c = await aCandidate(
        world,
        { version: `3.0.${i}`, network: 'unix' },
        { activation: { strategy: 'Recreate', drainSeconds: 0, verifySeconds: 0 }, health: { probes: [] } },
      );
      expect((await world.engine.activate(c.spec)).phase).toBe('Active');
    }
    const recreated = await recreateLoop.stop();
    expect(recreated.failed).toBeGreaterThan(0);
  }, 120_000);

  it('probes without swapping in a dry run', async () => {
    const { world, v1 } = await withV1Active();
    const v2 = await aCandidate(world, { version: '2.0.0', network: 'unix' }, { dryRun: true });
    const status = await world.engine.activate(v2.spec);
    expect(status).toMatchObject({ phase: 'Probed', activeRevision: v1.spec.revision });
    expect(current(world)).toBe(v1.spec.revision);
    expect(livePluginProcesses(world)).toHaveLength(1);
  });
});
