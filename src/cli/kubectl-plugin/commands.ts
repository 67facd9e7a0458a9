// The kubectl plugin's subcommands: each reads or patches one PluginRelease through the stores and
// returns the text to print. Failures reject with the store's KubeApiError (NotFound included).
// Constants from group.ts and types only: importing ../../api/index.ts would build every zod schema.
import { Annotations, Labels } from '../../api/group.ts';
import type { PluginActivation, PluginRelease } from '../../api/index.ts';
import type { ObjectRef, ResourceStore } from '../../kube/index.ts';
import { renderHistory, renderStatus } from './format.ts';

export interface CommandContext {
  releases: ResourceStore<PluginRelease>;
  activations: ResourceStore<PluginActivation>;
  /** The release named on the command line, in the resolved namespace. */
  ref: ObjectRef & { namespace: string };
  /** Milliseconds since the epoch; a parameter so ages and retry tokens are testable. */
  now(): number;
}

export interface PluginCommand {
  summary: string;
  help: string;
  run(context: CommandContext): Promise<string>;
}

/** How kubectl names the object in one-line results: `<plural>.<group>/<name>`. */
const kindRef = (name: string) => `pluginrelease.pluginrelease.io/${name}`;

const COMMON_FLAGS = `Flags:
  --kubeconfig <path>    kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
  --context <name>       kubeconfig context (default: the current context)
  -n, --namespace <ns>   the release's namespace (default: the context's namespace)
  -h, --help             show this help`;

const status: PluginCommand = {
  summary: 'Conditions, phase, READY n/m, revision and one row per node',
  help: `Usage: kubectl pluginrelease status <release> [flags]

Prints the release's phase, READY n/m and revision, its conditions, and a per-node table built from
its PluginActivations (label ${Labels.release}=<release>): NODE, PHASE, REVISION (the one the node
reports on), ACTIVE (the revision the node serves), REASON, AGE (time in the current phase) and
MESSAGE (cut to one line; the full text is in \`kubectl get pla <name> -o yaml\`).

${COMMON_FLAGS}

Examples:
  kubectl pluginrelease status echo
  kubectl pluginrelease status echo -n plugins --context prod`,
  async run({ releases, activations, ref, now }) {
    const release = await releases.get(ref);
    const list = await activations.list(ref.namespace, { labelSelector: `${Labels.release}=${ref.name}` });
    return renderStatus(release, list.items, now());
  },
};

const retry: PluginCommand = {
  summary: `Retry the current revision on nodes that failed it (sets ${Annotations.retryAt})`,
  help: `Usage: kubectl pluginrelease retry <release> [flags]

Sets the annotation ${Annotations.retryAt} to the current unix time. Any new value tells the
controller to try the current revision again on the nodes that rolled it back or failed it, without
editing the spec: fix the cause first (stage the artifact, free the port, ...), then retry.
Nodes that succeeded are left alone.

${COMMON_FLAGS}

Examples:
  kubectl pluginrelease retry echo
  kubectl pluginrelease status echo   # watch the failed nodes try again`,
  async run({ releases, ref, now }) {
    const release = await releases.get(ref);
    const previous = Number(release.metadata.annotations?.[Annotations.retryAt]);
    // Two retries within one second must still differ: only a new value is a new retry.
    let token = Math.floor(now() / 1000);
    if (Number.isSafeInteger(previous) && previous >= token) token = previous + 1;
    await releases.mergePatch(ref, { metadata: { annotations: { [Annotations.retryAt]: String(token) } } });
    const failed = release.status?.failedNodes?.length ?? 0;
    const note =
      failed > 0
        ? `${failed} node${failed === 1 ? '' : 's'} that failed revision ${release.status?.revision ?? ''} will try again.`
        : 'No node has failed the current revision; nothing will be retried unless one does.';
    return `${kindRef(ref.name)} retry requested (${Annotations.retryAt}=${token})\n${note}`;
  },
};

const pause: PluginCommand = {
  summary: 'Start no new node activations (spec.rollout.paused=true)',
  help: `Usage: kubectl pluginrelease pause <release> [flags]

Sets spec.rollout.paused=true: the controller starts no new node activations. Nodes already in
flight finish; nothing is rolled back. Undo with \`kubectl pluginrelease resume\`.

${COMMON_FLAGS}

Example:
  kubectl pluginrelease pause echo`,
  async run({ releases, ref }) {
    const release = await releases.get(ref);
    if (release.spec.rollout?.paused === true) return `${kindRef(ref.name)} already paused`;
    await releases.mergePatch(ref, { spec: { rollout: { paused: true } } });
    return `${kindRef(ref.name)} paused`;
  },
};

const resume: PluginCommand = {
  summary: 'Continue a paused rollout, including one paused after its canaries',
  help: `Usage: kubectl pluginrelease resume <release> [flags]

Sets spec.rollout.paused=false and spec.rollout.canary.pauseAfter=false, so a rollout paused by hand
or waiting after its canary nodes (reason CanaryPaused) continues with the next wave.

${COMMON_FLAGS}

Example:
  kubectl pluginrelease resume echo`,
  async run({ releases, ref }) {
    const release = await releases.get(ref);
    const rollout = release.spec.rollout;
    if (rollout?.paused !== true && rollout?.canary?.pauseAfter !== true) {
      return `${kindRef(ref.name)} not paused`;
    }
    await releases.mergePatch(ref, { spec: { rollout: { paused: false, canary: { pauseAfter: false } } } });
    return `${kindRef(ref.name)} resumed`;
  },
};

const history: PluginCommand = {
  summary: 'Revisions rolled out and their outcomes, newest first',
  help: `Usage: kubectl pluginrelease history <release> [flags]

Prints status.history: each revision's version, outcome (Progressing, Complete, Halted, RolledBack,
Superseded, Probed), when it started, how long it took and why it ended. The controller keeps the
last 10; the revision the release is on now is marked with *.

${COMMON_FLAGS}

Example:
  kubectl pluginrelease history echo`,
  async run({ releases, ref, now }) {
    return renderHistory(await releases.get(ref), now());
  },
};

export const pluginCommands: Record<string, PluginCommand> = { status, retry, pause, resume, history };
