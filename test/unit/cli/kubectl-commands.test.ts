// The kubectl plugin's steering verbs against an in-memory release store: what undo, abort, promote,
// resume and retry write, and what they refuse; and the --to-revision flag.
import { describe, expect, it } from 'vitest';
import type { HistoryEntry, PluginActivation, PluginRelease } from '../../../src/api/index.ts';
import { type CommandContext, pluginCommands } from '../../../src/cli/kubectl-plugin/commands.ts';
import { parseInvocation } from '../../../src/cli/kubectl-plugin.ts';
import type { ResourceStore } from '../../../src/kube/index.ts';
import { aRelease, parsedRelease } from '../../support/builders.ts';

const NOW = Date.parse('2026-11-23T12:00:00Z');

/** One release in memory; records every write the command makes. */
function aContext(release: PluginRelease, toRevision?: number) {
  const writes: Array<{ kind: 'replace' | 'mergePatch'; body: unknown }> = [];
  let stored = structuredClone(release);
  const releases = {
    get: async () => structuredClone(stored),
    replace: async (obj: PluginRelease) => {
      writes.push({ kind: 'replace', body: obj });
      stored = structuredClone(obj);
      return obj;
    },
    mergePatch: async (_ref: unknown, patch: unknown) => {
      writes.push({ kind: 'mergePatch', body: patch });
      return stored;
    },
  } as unknown as ResourceStore<PluginRelease>;
  const context: CommandContext = {
    releases,
    activations: {} as ResourceStore<PluginActivation>,
    ref: { namespace: 'default', name: 'echo' },
    now: () => NOW,
    output: undefined,
    watch: false,
    timeoutMs: 0,
    print: () => {},
    follow: async () => undefined,
    interrupted: new AbortController().signal,
    ...(toRevision !== undefined ? { toRevision } : {}),
  };
  return { context, writes, stored: () => stored };
}

const v1 = parsedRelease(aRelease().withVersion('1.0.0'));
const v2 = parsedRelease(aRelease().withVersion('2.0.0'));
const entry = (number: number, release: PluginRelease, revision: string, nodeRun = true): HistoryEntry => {
  const { version, runtime, artifact, config, handshake, health, serve, process, activation } = release.spec;
  return {
    number,
    revision,
    version,
    outcome: 'Complete',
    startedAt: new Date(NOW).toISOString(),
    ...(nodeRun
      ? {
          nodeRun: {
            version,
            runtime,
            ...(artifact ? { artifact } : {}),
            ...(config ? { config } : {}),
            handshake,
            health,
            serve,
            process,
            activation,
          },
        }
      : {}),
  };
};
/** v2 rolled out over v1: the state undo starts from. */
const onV2 = (history: HistoryEntry[], extra: Partial<PluginRelease['status']> = {}): PluginRelease => ({
  ...v2,
  spec: { ...v2.spec, config: { path: '/srv/staging/echo.json', digest: `sha256:${'c'.repeat(64)}` } },
  status: { revision: 'rev-2', history, ...extra },
});

describe('undo', () => {
  it('writes the previous revision’s node-run spec back, dropping fields it did not have', async () => {
    const { context, writes, stored } = aContext(onV2([entry(2, v2, 'rev-2'), entry(1, v1, 'rev-1')]));
    expect(await pluginCommands.undo!.run(context)).toMatch(
      /rolled back to history entry 1, version 1\.0\.0/,
    );
    expect(writes.map((w) => w.kind)).toEqual(['replace']);
    expect(stored().spec.version).toBe('1.0.0');
    expect(stored().spec.config).toBeUndefined();
    expect(stored().spec.rollout).toEqual(v2.spec.rollout);
  });

  it('goes to the entry --to-revision names', async () => {
    const history = [entry(3, v2, 'rev-2'), entry(2, v2, 'rev-x'), entry(1, v1, 'rev-1')];
    const { context, stored } = aContext(onV2(history), 1);
    await pluginCommands.undo!.run(context);
    expect(stored().spec.version).toBe('1.0.0');
  });

  const refusals: { name: string; history: HistoryEntry[]; toRevision?: number; error: RegExp }[] = [
    { name: 'no earlier revision', history: [entry(1, v2, 'rev-2')], error: /no earlier revision/ },
    {
      name: 'an entry that does not exist',
      history: [entry(2, v2, 'rev-2'), entry(1, v1, 'rev-1')],
      toRevision: 7,
      error: /has no history entry 7/,
    },
    {
      name: 'an entry an older controller recorded without its spec',
      history: [entry(2, v2, 'rev-2'), entry(1, v1, 'rev-1', false)],
      error: /keeps no spec/,
    },
  ];
  it.each(refusals)('refuses $name, writing nothing', async ({ history, toRevision, error }) => {
    const { context, writes } = aContext(onV2(history), toRevision);
    await expect(pluginCommands.undo!.run(context)).rejects.toThrow(error);
    expect(writes).toEqual([]);
  });
});

describe('abort, promote, resume and retry', () => {
  const paused = (reason: string, phase: PluginRelease['status'] = {}): PluginRelease => ({
    ...v2,
    status: {
      revision: 'rev-2',
      phase: 'Paused',
      conditions: [
        {
          type: 'Ready',
          status: 'False',
          reason,
          message: '',
          lastTransitionTime: new Date(NOW).toISOString(),
        },
      ],
      ...phase,
    },
  });

  it('abort names the revision in flight, and refuses a complete one', async () => {
    const running = aContext(paused('RolloutProgressing', { phase: 'Progressing' }));
    await pluginCommands.abort!.run(running.context);
    expect(running.writes[0]?.body).toEqual({
      metadata: { annotations: { 'pluginrelease.io/abort': 'rev-2' } },
    });
    const ready = aContext(paused('RolloutComplete', { phase: 'Ready' }));
    expect(await pluginCommands.abort!.run(ready.context)).toMatch(/nothing to abort/);
    expect(ready.writes).toEqual([]);
  });

  it('promote and resume after the canaries set the annotation, never the spec', async () => {
    for (const verb of ['promote', 'resume'] as const) {
      const { context, writes } = aContext(paused('CanaryPaused'));
      await pluginCommands[verb]!.run(context);
      expect(writes).toEqual([
        { kind: 'mergePatch', body: { metadata: { annotations: { 'pluginrelease.io/promote': 'rev-2' } } } },
      ]);
    }
    const progressing = aContext(paused('RolloutProgressing'));
    expect(await pluginCommands.promote!.run(progressing.context)).toMatch(/nothing to promote/);
  });

  it('resume of a hand pause writes spec.rollout.paused, the one Git-owned field it touches', async () => {
    const { context, writes } = aContext({
      ...paused('RolloutPaused'),
      spec: { ...v2.spec, rollout: { ...v2.spec.rollout, paused: true } },
    });
    await pluginCommands.resume!.run(context);
    expect(writes[0]?.body).toEqual({ spec: { rollout: { paused: false } } });
  });

  it('retry lifts an abort', async () => {
    const { context, writes } = aContext(paused('RolloutAborted'));
    await pluginCommands.retry!.run(context);
    expect(writes[0]?.body).toMatchObject({ metadata: { annotations: { 'pluginrelease.io/abort': null } } });
  });
});

describe('--to-revision', () => {
  it.each([
    [['undo', 'echo', '--to-revision', '3'], 3],
    [['undo', 'echo'], undefined],
  ])('parses %j', (argv, want) => {
    expect(parseInvocation(argv).flags['to-revision']).toBe(want);
  });

  it.each([
    [['undo', 'echo', '--to-revision', 'x'], /--to-revision needs a history NUMBER/],
    [['undo', 'echo', '--to-revision', '0'], /--to-revision needs a history NUMBER/],
    [['abort', 'echo', '--to-revision', '2'], /abort does not take --to-revision/],
  ])('refuses %j', (argv, error) => {
    expect(() => parseInvocation(argv)).toThrow(error);
  });
});
