// `plugin-release demo` (`npm run demo`): three acts on a dev cluster with real agents and plugins —
// a first rollout, a canary upgrade under traffic, and a broken release that rolls back.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { z } from 'zod';
import {
  API_VERSION,
  type PluginActivation,
  type PluginRelease,
  PluginReleaseSpec,
  type PluginReleaseSpecInput,
  revisionOf,
} from '../../src/api/index.ts';
import { parseFlags, UsageError, untilSignal } from '../../src/cli/flags.ts';
import { stageEcho, writeEchoConfig } from '../demo/echo.ts';
import { type LocalFleet, startLocalFleet } from '../demo/fleet.ts';
import { LiveView, type NodeRow } from '../demo/render.ts';
import { servingVersion, startTraffic } from '../demo/traffic.ts';

export const help = `Usage: plugin-release demo [--nodes <n>] [--keep] [--plain]

Starts a dev cluster with simulated nodes, the controller and one agent per node, stages the example
echo plugin in versions 1.0.0, 2.0.0 and a broken 3.0.0, and plays three acts:
  1. apply 1.0.0: every node activates it;
  2. upgrade to 2.0.0 with a canary, while a client sends requests through every node's front;
  3. apply the broken 3.0.0: the canary rejects it, the release stalls, 2.0.0 keeps serving.

Flags:
  --nodes <n>   simulated nodes (default 3)
  --keep        keep the cluster running after the acts, until Ctrl-C, to inspect it with kubectl
  --plain       print plain progress lines even on a terminal

Example:
  npm run demo -- --keep`;

const Flags = z.object({
  nodes: z.coerce.number().int().min(1).max(20).default(3),
  keep: z.boolean().default(false),
  plain: z.boolean().default(false),
});

const NAMESPACE = 'default';
const NAME = 'echo';
const ACT_TIMEOUT_MS = 45_000;

interface Staged {
  version: string;
  spec: PluginReleaseSpecInput;
  revision: string;
}

export async function main(argv: string[]): Promise<number> {
  let flags: z.infer<typeof Flags>;
  try {
    flags = parseFlags(
      argv,
      { nodes: { type: 'string' }, keep: { type: 'boolean' }, plain: { type: 'boolean' } },
      Flags,
    );
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`plugin-release demo: ${error.message}\n\n${help}`);
    return 1;
  }
  const started = Date.now();
  const dir = await mkdtemp(join(tmpdir(), 'plugin-release-demo-'));
  const logFile = join(dir, 'demo.log');
  const logger = pino({ level: 'info' }, pino.destination({ dest: logFile, sync: false, mkdir: true }));
  const view = new LiveView(process.stdout, Boolean(process.stdout.isTTY) && !flags.plain);
  view.say(
    `plugin-release demo: a dev cluster with ${flags.nodes} nodes, a controller and an agent per node.`,
  );
  const fleet = await startLocalFleet({ logger, nodes: flags.nodes, dir });
  const versions = await stageVersions(fleet);
  const sockets = fleet.agents.map((a) => fleet.frontSocket(a.node, NAME));
  const traffic = startTraffic(sockets);
  const stage: Stage = {
    fleet,
    view,
    traffic,
    sockets,
    versionOf: new Map(versions.map((v) => [v.revision, v.version])),
  };
  const outcomes: string[] = [];
  let ok: boolean;
  try {
    ok = await playActs(stage, versions as [Staged, Staged, Staged], (line) => {
      outcomes.push(line);
      view.say(line);
    });
  } catch (error) {
    ok = false;
    view.say(`\nThe demo failed: ${(error as Error).message}`);
  }
  await traffic.stop();

  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  view.say(`\n${ok ? 'Done' : 'Finished with a problem'} in ${seconds}s. What happened:`);
  for (const line of outcomes) view.say(`  ${line}`);
  view.say(`\nLogs: ${logFile}`);
  if (flags.keep) {
    view.say(
      `The cluster keeps running. Inspect it with:\n  kubectl --kubeconfig ${fleet.kubeconfigPath} get plr,pla`,
    );
    view.say('Press Ctrl-C to stop.');
    await untilSignal();
  } else {
    // The cluster stops with the demo, so a kubectl line here would point at nothing.
    view.say('The cluster stops now. To inspect it with kubectl afterwards, run: npm run demo -- --keep');
  }
  await fleet.stop();
  logger.flush();
  return ok ? 0 : 1;
}

/** What the acts play on: the fleet, the view they draw, the clients' traffic and its sockets. */
interface Stage {
  fleet: LocalFleet;
  view: LiveView;
  traffic: ReturnType<typeof startTraffic>;
  sockets: string[];
  versionOf: Map<string, string>;
}

/**
 * The three acts, each reporting its outcome through `outcome`; true when every act ended as it
 * should (no failed request, the broken release rejected while 2.0.0 keeps serving). An act that
 * times out throws.
 */
async function playActs(
  stage: Stage,
  [v1, v2, v3]: [Staged, Staged, Staged],
  outcome: (line: string) => void,
): Promise<boolean> {
  const { fleet, view, traffic, sockets } = stage;
  let ok = true;
  view.say('\nAct 1: apply echo 1.0.0 to every node at once.');
  await fleet.clients.releases.create({
    apiVersion: API_VERSION,
    kind: 'PluginRelease',
    metadata: { name: NAME, namespace: NAMESPACE },
    spec: { ...v1.spec, rollout: { maxUnavailable: '100%' } },
  } as PluginRelease);
  let release = await watchAct(stage, 'Act 1: echo 1.0.0', (r) => r.status?.phase === 'Ready');
  outcome(`Act 1: 1.0.0 is Active on ${release.status?.ready} nodes.`);

  traffic.reset();
  view.say(
    '\nAct 2: upgrade to 2.0.0: one canary node first, then two at a time, with clients sending requests.',
  );
  await applySpec(fleet, { ...v2.spec, rollout: { canary: { nodes: 1 }, maxUnavailable: 2 } });
  release = await watchAct(
    stage,
    'Act 2: echo 2.0.0 (canary, under traffic)',
    (r) => r.status?.phase === 'Ready',
  );
  const act2 = { ...traffic.counts };
  ok &&= act2.failed === 0;
  outcome(
    `Act 2: 2.0.0 is Active on ${release.status?.ready} nodes; ${act2.ok} requests through the fronts, ${act2.failed} failed.`,
  );

  traffic.reset();
  view.say('\nAct 3: apply 3.0.0, whose config makes it unhealthy. The canary must reject it.');
  await applySpec(fleet, { ...v3.spec, rollout: { canary: { nodes: 1 }, maxUnavailable: 2 } });
  release = await watchAct(stage, 'Act 3: echo 3.0.0 (broken)', (r) => r.status?.phase === 'Stalled');
  const failed = release.status?.failedNodes?.[0];
  const serving = await Promise.all(sockets.map(servingVersion));
  const stillV2 = serving.every((v) => v === v2.version);
  ok &&= stillV2 && traffic.counts.failed === 0;
  outcome(
    `Act 3: the canary ${failed?.node} rolled back (${failed?.reason}); the release is Stalled (${stalledReason(release)}); ` +
      `every node still serves ${serving.join(', ')}; ${traffic.counts.failed} of ${traffic.counts.ok + traffic.counts.failed} requests failed.`,
  );
  return ok;
}

/** Polls the release and its activations, drawing them, until `until` holds for the current generation. */
async function watchAct(
  { fleet, view, traffic, versionOf }: Stage,
  title: string,
  until: (r: PluginRelease) => boolean,
): Promise<PluginRelease> {
  const deadline = Date.now() + ACT_TIMEOUT_MS;
  for (;;) {
    const release = await fleet.clients.releases.get({ namespace: NAMESPACE, name: NAME });
    const activations = (await fleet.clients.activations.list(NAMESPACE)).items;
    view.draw({
      title,
      release: `${release.status?.phase ?? 'Pending'}  ready ${release.status?.ready ?? '-'}  ${readyCondition(release)}`,
      traffic: `${traffic.counts.ok} ok, ${traffic.counts.failed} failed  ${JSON.stringify(traffic.counts.versions)}`,
      rows: rowsOf(activations, versionOf),
    });
    if (until(release) && release.status?.observedGeneration === release.metadata.generation) return release;
    if (Date.now() > deadline) throw new Error(`${title}: timed out after ${ACT_TIMEOUT_MS / 1000}s`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** Stages 1.0.0, 2.0.0 and a 3.0.0 whose config requires a file that does not exist. */
async function stageVersions(fleet: LocalFleet): Promise<Staged[]> {
  const probes = {
    probes: [
      { grpc: {}, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 },
      { httpGet: { path: '/healthz' }, periodSeconds: 1, timeoutSeconds: 1, failureThreshold: 2 },
    ],
  };
  const staged: Staged[] = [];
  for (const version of ['1.0.0', '2.0.0', '3.0.0']) {
    const artifact = await stageEcho(join(fleet.stagingRoot, 'echo', version), version);
    const config = await writeEchoConfig(join(fleet.stagingRoot, 'echo', `${version}.json`), {
      greeting: `hello`,
      ...(version === '3.0.0' ? { requires: '/nonexistent/feature-flag-file' } : {}),
    });
    const spec: PluginReleaseSpecInput = {
      plugin: NAME,
      version,
      artifact: { path: artifact.path, digest: artifact.digest, entrypoint: 'plugin' },
      config,
      health: probes,
      // Long enough for a probe to reach its failureThreshold: 2 × (1 s period + 1 s timeout).
      activation: { drainSeconds: 1, verifySeconds: 4 },
    };
    staged.push({ version, spec, revision: revisionOf(PluginReleaseSpec.parse(spec)) });
  }
  return staged;
}

async function applySpec(fleet: LocalFleet, spec: PluginReleaseSpecInput): Promise<void> {
  const current = await fleet.clients.releases.get({ namespace: NAMESPACE, name: NAME });
  await fleet.clients.releases.replace({ ...current, spec: spec as PluginRelease['spec'] });
}

function rowsOf(activations: readonly PluginActivation[], versionOf: Map<string, string>): NodeRow[] {
  return activations
    .map((a) => {
      // A status the agent wrote for an earlier spec says nothing about this one yet.
      const current = a.status?.observedGeneration === a.metadata.generation;
      return {
        node: a.spec.nodeName,
        phase: current ? (a.status?.phase ?? 'Pending') : 'Pending',
        revision: a.spec.revision,
        version: a.spec.version,
        active: a.status?.activeRevision
          ? (versionOf.get(a.status.activeRevision) ?? a.status.activeRevision)
          : '-',
        reason: current ? (a.status?.reason ?? '') : '',
      };
    })
    .sort((a, b) => a.node.localeCompare(b.node, 'en', { numeric: true }));
}

function readyCondition(release: PluginRelease): string {
  const ready = release.status?.conditions?.find((c) => c.type === 'Ready');
  return ready ? `Ready=${ready.status} (${ready.reason})` : '';
}

function stalledReason(release: PluginRelease): string {
  return release.status?.conditions?.find((c) => c.type === 'Stalled')?.reason ?? 'no Stalled condition';
}
