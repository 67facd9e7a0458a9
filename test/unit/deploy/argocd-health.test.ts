// Runs the Argo CD health checks in deploy/argocd/ in a real Lua VM against PluginRelease and
// PluginActivation objects in every state the controller and the agents report.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { ConditionType, GROUP, Kinds, NodeReason, ReleaseReason } from '../../../src/api/index.ts';
import { aRelease } from '../../support/builders.ts';
import { luaLiteral, runHealthScript } from './lua.ts';

const argocdDir = join(import.meta.dirname, '../../../deploy/argocd');
const releaseScript = readFileSync(join(argocdDir, 'health-pluginrelease.lua'), 'utf8');
const activationScript = readFileSync(join(argocdDir, 'health-pluginactivation.lua'), 'utf8');

type Status = 'True' | 'False' | 'Unknown';
const condition = (type: string, status: Status, reason: string, message = `${reason}.`) => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: '2026-01-01T00:00:00Z',
  observedGeneration: 1,
});

/** A PluginRelease as Argo CD sees it: generation 1, with the given status and spec tweaks. */
function release(
  status: Record<string, unknown> | undefined,
  spec: { paused?: boolean; dryRun?: boolean; generation?: number } = {},
) {
  let builder = aRelease();
  if (spec.paused) builder = builder.withSpec({ rollout: { paused: true } });
  if (spec.dryRun) builder = builder.withSpec({ dryRun: true });
  const manifest = builder.manifest();
  manifest.metadata.generation = spec.generation ?? 1;
  return status === undefined ? manifest : { ...manifest, status };
}

const observed = (conditions: unknown[], extra: Record<string, unknown> = {}) => ({
  observedGeneration: 1,
  conditions,
  ...extra,
});

const { Ready, Reconciling, Stalled, Probed, RolledBack } = ConditionType;

describe('the PluginRelease health check', () => {
  const cases: Array<{ name: string; obj: unknown; status: string; message?: RegExp }> = [
    {
      name: 'a release the controller has not seen yet is Progressing',
      obj: release(undefined),
      status: 'Progressing',
      message: /Waiting for the controller/,
    },
    {
      name: 'a status written for an older generation is Progressing, even when it said Ready',
      obj: release(observed([condition(Ready, 'True', ReleaseReason.RolloutComplete)]), { generation: 2 }),
      status: 'Progressing',
      message: /generation 2/,
    },
    {
      name: 'a rollout in progress is Progressing with the Reconciling message',
      obj: release(
        observed([
          condition(Reconciling, 'True', ReleaseReason.RolloutProgressing, '2 of 5 nodes are active.'),
          condition(Ready, 'False', ReleaseReason.RolloutProgressing),
        ]),
      ),
      status: 'Progressing',
      message: /^RolloutProgressing: 2 of 5 nodes are active\.$/,
    },
    {
      name: 'a completed rollout on the current generation is Healthy',
      obj: release(
        observed([condition(Ready, 'True', ReleaseReason.RolloutComplete, '5/5 nodes are active.')]),
      ),
      status: 'Healthy',
      message: /5\/5 nodes/,
    },
    {
      name: 'a halted rollout (Stalled) is Degraded with the reason and message',
      obj: release(
        observed([
          condition(Stalled, 'True', ReleaseReason.RolloutHalted, 'node-a rolled back: ProbeFailed.'),
          condition(Ready, 'False', ReleaseReason.RolloutHalted),
          condition(RolledBack, 'True', ReleaseReason.NodeRolledBack),
        ]),
      ),
      status: 'Degraded',
      message: /^RolloutHalted: node-a rolled back: ProbeFailed\.$/,
    },
    {
      name: 'an invalid spec (Stalled) is Degraded',
      obj: release(observed([condition(Stalled, 'True', ReleaseReason.InvalidSpec)])),
      status: 'Degraded',
    },
    {
      name: 'Stalled wins over a paused rollout',
      obj: release(observed([condition(Stalled, 'True', ReleaseReason.FleetRolledBack)]), { paused: true }),
      status: 'Degraded',
    },
    {
      name: 'a paused rollout that is not complete is Suspended',
      obj: release(
        observed([
          condition(Reconciling, 'True', ReleaseReason.RolloutPaused, 'Paused with 2 of 5 nodes active.'),
          condition(Ready, 'False', ReleaseReason.RolloutPaused),
        ]),
        { paused: true },
      ),
      status: 'Suspended',
      message: /Paused with 2 of 5/,
    },
    {
      name: 'a rollout paused after its canaries is Suspended',
      obj: release(
        observed([condition(Ready, 'False', ReleaseReason.CanaryPaused, 'The canary is active.')], {
          phase: 'Paused',
        }),
      ),
      status: 'Suspended',
      message: /CanaryPaused/,
    },
    {
      name: 'a paused release whose nodes are all active is Healthy',
      obj: release(observed([condition(Ready, 'True', ReleaseReason.RolloutComplete)]), { paused: true }),
      status: 'Healthy',
    },
    {
      name: 'a dry run every node passed is Healthy',
      obj: release(observed([condition(Probed, 'True', ReleaseReason.DryRunPassed)]), { dryRun: true }),
      status: 'Healthy',
      message: /DryRunPassed/,
    },
    {
      name: 'a dry run that failed on a node is Degraded',
      obj: release(
        observed([condition(Probed, 'False', ReleaseReason.DryRunFailed, 'node-b: ProbeFailed.')]),
        {
          dryRun: true,
        },
      ),
      status: 'Degraded',
      message: /node-b/,
    },
    {
      name: 'a dry run still probing is Progressing',
      obj: release(observed([condition(Probed, 'False', ReleaseReason.DryRunProgressing)]), { dryRun: true }),
      status: 'Progressing',
    },
    {
      name: 'an observed release without conditions yet is Progressing',
      obj: release({ observedGeneration: 1 }),
      status: 'Progressing',
    },
  ];

  it.each(cases)('$name', ({ obj, status, message }) => {
    const health = runHealthScript(releaseScript, obj);
    expect(health.status).toBe(status);
    if (message) expect(health.message).toMatch(message);
  });
});

describe('the PluginActivation health check', () => {
  const activation = (status?: Record<string, unknown>, generation = 1) => ({
    apiVersion: `${GROUP}/v1alpha1`,
    kind: Kinds.PluginActivation.kind,
    metadata: { name: 'echo-node-a', namespace: 'default', generation },
    spec: { nodeName: 'node-a', revision: 'abc123def456' },
    ...(status ? { status: { observedGeneration: 1, ...status } } : {}),
  });
  const cases: Array<{ name: string; obj: unknown; status: string; message?: RegExp }> = [
    { name: 'an activation no agent picked up is Progressing', obj: activation(), status: 'Progressing' },
    {
      name: 'an activation still probing is Progressing',
      obj: activation({ phase: 'Probing', reason: NodeReason.Probing }),
      status: 'Progressing',
    },
    {
      name: 'an Active activation is Healthy',
      obj: activation({ phase: 'Active', reason: NodeReason.Activated, message: 'Serving.' }),
      status: 'Healthy',
      message: /^Activated: Serving\.$/,
    },
    {
      name: 'a dry-run activation that probed healthy is Healthy',
      obj: activation({ phase: 'Probed', reason: NodeReason.ProbeSucceeded }),
      status: 'Healthy',
    },
    {
      name: 'a rolled-back activation is Degraded with the agent reason',
      obj: activation({
        phase: 'RolledBack',
        reason: NodeReason.HandshakeTimeout,
        message: 'No line in 10s.',
      }),
      status: 'Degraded',
      message: /^HandshakeTimeout: No line in 10s\.$/,
    },
    {
      name: 'a Failed activation is Degraded',
      obj: activation({ phase: 'Failed', reason: NodeReason.RollbackFailed }),
      status: 'Degraded',
      message: /RollbackFailed/,
    },
    {
      name: 'a status for an older generation is Progressing',
      obj: activation({ phase: 'Active', reason: NodeReason.Activated }, 2),
      status: 'Progressing',
    },
  ];

  it.each(cases)('$name', ({ obj, status, message }) => {
    const health = runHealthScript(activationScript, obj);
    expect(health.status).toBe(status);
    if (message) expect(health.message).toMatch(message);
  });
});

describe('the Argo CD installation', () => {
  const patch = parse(readFileSync(join(argocdDir, 'argocd-cm-patch.yaml'), 'utf8'));

  it('embeds both health checks verbatim under the keys Argo CD looks up (group_Kind)', () => {
    expect(patch.metadata.name).toBe('argocd-cm');
    expect(patch.data).toEqual({
      [`resource.customizations.health.${GROUP}_${Kinds.PluginRelease.kind}`]: releaseScript,
      [`resource.customizations.health.${GROUP}_${Kinds.PluginActivation.kind}`]: activationScript,
    });
  });

  it.each([
    ['health-pluginrelease.lua', releaseScript],
    ['health-pluginactivation.lua', activationScript],
  ])('%s sticks to Lua 5.1, the dialect of Argo CD’s gopher-lua', (_file, script) => {
    const code = script.replace(/--.*$/gm, '').replace(/"(?:[^"\\]|\\.)*"/g, '""');
    expect(code).not.toMatch(/\bgoto\b|\/\/|<<|>>|&|\||~(?!=)|::/);
  });
});

describe('the Lua test harness', () => {
  it('passes strings with quotes, backslashes, newlines and non-ASCII text through unchanged', () => {
    const message = 'He said "no"\\ then\nleft — ünïcödé';
    const script = 'return { status = "Healthy", message = obj.message }';
    expect(runHealthScript(script, { message })).toEqual({ status: 'Healthy', message });
  });

  it('turns JSON null into nil', () => {
    expect(luaLiteral({ a: null, b: [1, true] })).toBe('{["a"] = nil, ["b"] = {1, true}}');
  });

  it('reports a script that does not compile', () => {
    expect(() => runHealthScript('return {', {})).toThrow(/does not compile/);
  });
});
