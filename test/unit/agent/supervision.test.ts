// Pure parts of serving continuity: the status supervision implies, and the verification window.
import { describe, expect, it } from 'vitest';
import { passiveThreshold, verifyWindowMs } from '../../../src/agent/actions/verify.ts';
import { supervisedStatus } from '../../../src/agent/binding.ts';
import type { SupervisedHealth } from '../../../src/agent/plugin-host.ts';
import { type PluginActivationStatus, Probe } from '../../../src/api/index.ts';

const active: PluginActivationStatus = {
  phase: 'Active',
  reason: 'Activated',
  message: 'Revision r1 is active and serving.',
  revision: 'r1',
  activeRevision: 'r1',
  conditions: [
    {
      type: 'Ready',
      status: 'True',
      reason: 'Activated',
      message: 'ok',
      lastTransitionTime: '2026-12-01T00:00:00.000Z',
    },
  ],
};
const condition = (s: PluginActivationStatus, type: string) => s.conditions?.find((c) => c.type === type);

describe('supervisedStatus', () => {
  const cases: { name: string; health: SupervisedHealth; want: Record<string, unknown> }[] = [
    {
      name: 'leaves a status alone while the process never exited',
      health: { revision: 'r1', restarts: 0, down: false },
      want: { Ready: 'True/Activated', Degraded: undefined, restarts: undefined },
    },
    {
      name: 'leaves the status of another revision alone',
      health: { revision: 'r0', restarts: 2, down: true },
      want: { Ready: 'True/Activated', Degraded: undefined, restarts: undefined },
    },
    {
      name: 'says the node is down while the process is being restarted',
      health: {
        revision: 'r1',
        restarts: 1,
        down: true,
        lastExit: 'exited with code 2',
        message: 'Restarting it in 2s.',
      },
      want: {
        Ready: 'False/PluginDown',
        Degraded: 'True/CrashLoopBackOff',
        restarts: 1,
        reason: 'PluginDown',
      },
    },
    {
      name: 'says it serves again, and how often it was restarted',
      health: { revision: 'r1', restarts: 3, down: false, lastExit: 'exited with code 2' },
      want: { Ready: 'True/Activated', Degraded: 'False/PluginRestarted', restarts: 3, reason: 'Activated' },
    },
  ];
  it.each(cases)('$name', ({ health, want }) => {
    const got = supervisedStatus(active, health, new Date('2026-12-01T12:00:00.000Z'));
    const pair = (type: string) => {
      const c = condition(got, type);
      return c ? `${c.status}/${c.reason}` : undefined;
    };
    expect(pair('Ready')).toBe(want.Ready);
    expect(pair('Degraded')).toBe(want.Degraded);
    expect(got.restarts).toBe(want.restarts);
    if (want.reason) expect(got.reason).toBe(want.reason);
    expect(got.phase).toBe('Active');
  });
});

describe('the verification window', () => {
  const probe = (p: Record<string, number>) => Probe.parse({ grpc: {}, ...p });
  const cases = [
    {
      name: 'is verifySeconds when every threshold fits',
      verify: 10,
      probes: [probe({ periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 3 })],
      ms: 10_000,
      threshold: 3,
    },
    {
      name: 'is extended to failureThreshold × (period + timeout) when it would be too short',
      verify: 3,
      probes: [probe({ periodSeconds: 2, timeoutSeconds: 1, failureThreshold: 3 })],
      ms: 9000,
      threshold: 3,
    },
    {
      name: 'fits the slowest probe, and judges traffic by the strictest threshold',
      verify: 1,
      probes: [
        probe({ periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 }),
        probe({ periodSeconds: 5, timeoutSeconds: 1, failureThreshold: 4 }),
      ],
      ms: 24_000,
      threshold: 2,
    },
    {
      name: 'stays verifySeconds without probes, with the default passive threshold',
      verify: 2,
      probes: [],
      ms: 2000,
      threshold: 3,
    },
  ];
  it.each(cases)('$name', ({ verify, probes, ms, threshold }) => {
    const spec = { activation: { verifySeconds: verify }, health: { probes } } as never;
    expect(verifyWindowMs(spec)).toBe(ms);
    expect(passiveThreshold(spec)).toBe(threshold);
  });
});
