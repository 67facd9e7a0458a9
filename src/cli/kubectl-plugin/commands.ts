// The kubectl plugin's subcommands: each reads or patches one PluginRelease through the stores, prints
// its result and resolves to the exit code. Failures reject with the store's KubeApiError (NotFound
// included) or a CommandFailure.
// Constants from group.ts and types only: importing ../../api/index.ts would build every zod schema.
import { stringify } from 'yaml';
import { Annotations, Labels } from '../../api/group.ts';
import type { PluginActivation, PluginRelease } from '../../api/index.ts';
import type { ObjectRef, ResourceStore } from '../../kube/index.ts';
import { humanDuration } from '../../runtime/duration.ts';
import {
  historyDocument,
  releaseState,
  renderHistory,
  renderStatus,
  type StateSummary,
  statusDocument,
} from './format.ts';

export type OutputFormat = 'json' | 'yaml';
export type CommandFlag = 'output' | 'watch' | 'timeout' | 'to-revision';

export interface CommandContext {
  releases: ResourceStore<PluginRelease>;
  activations: ResourceStore<PluginActivation>;
  /** The release named on the command line, in the resolved namespace. */
  ref: ObjectRef & { namespace: string };
  /** Milliseconds since the epoch; a parameter so ages and retry tokens are testable. */
  now(): number;
  /** `undo --to-revision N`: the history entry's number. */
  toRevision?: number;
  /** -o json|yaml; text when undefined. */
  output: OutputFormat | undefined;
  /** --watch: keep printing after every change, until interrupted. */
  watch: boolean;
  /** --timeout of `wait`, in milliseconds. */
  timeoutMs: number;
  /** Writes one result to stdout. */
  print(text: string): void;
  /**
   * Watches the release and its activations: calls `onChange` with their state once the watches are
   * synced and after every change, until it returns an exit code (which `follow` resolves with) or
   * `signal` aborts (resolves undefined). Rejects NotFound when the release does not exist at the start.
   */
  follow(
    onChange: (release: PluginRelease | undefined, activations: PluginActivation[]) => number | undefined,
    signal: AbortSignal,
  ): Promise<number | undefined>;
  /** Aborted by SIGINT or SIGTERM. */
  interrupted: AbortSignal;
}

export interface PluginCommand {
  summary: string;
  help: string;
  /** Which of -o, --watch and --timeout it takes (none when omitted; others are usage errors). */
  flags?: readonly CommandFlag[];
  /** Resolves to the text to print (exit 0), or to the exit code of a command that printed itself. */
  run(context: CommandContext): Promise<string | number>;
}

/** A command's own failure (a Stalled release, a timeout): printed as `error: <message>`, exit 1. */
export class CommandFailure extends Error {}

/** The document as -o asks, or the text. */
function formatted(output: OutputFormat | undefined, document: () => unknown, text: () => string): string {
  if (output === 'json') return JSON.stringify(document(), null, 2);
  if (output === 'yaml') return stringify(document(), { lineWidth: 0 }).trimEnd();
  return text();
}

/** How kubectl names the object in one-line results: `<plural>.<group>/<name>`. */
const kindRef = (name: string) => `pluginrelease.pluginrelease.io/${name}`;

const COMMON_FLAGS = `Flags:
  --kubeconfig <path>    kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
  --context <name>       kubeconfig context (default: the current context)
  -n, --namespace <ns>   the release's namespace (default: the context's namespace)
  -h, --help             show this help`;

/** A command's --help: its usage line, what it does, the flags every command takes, and examples. */
function helpText(usage: string, body: string, examples: readonly string[]): string {
  const heading = examples.length === 1 ? 'Example' : 'Examples';
  return `Usage: kubectl pluginrelease ${usage}\n\n${body}\n\n${COMMON_FLAGS}\n\n${heading}:\n${examples.map((e) => `  ${e}`).join('\n')}`;
}

const status: PluginCommand = {
  summary: 'Conditions, state, READY n/m, revision and one row per node (-o json|yaml, --watch)',
  flags: ['output', 'watch'],
  help: helpText(
    'status <release> [-o json|yaml] [-w] [flags]',
    `Prints the release's phase, READY n/m and revision, what the rollout is doing (Ready, Progressing,
paused, or Stalled with its reason), its conditions, and a per-node table built from its
PluginActivations (label ${Labels.release}=<release>): NODE, PHASE, REVISION (the one the node
reports on), ACTIVE (the revision the node serves), REASON, AGE (time in the current phase) and
MESSAGE (cut to one line; the full text is in \`-o yaml\` or \`kubectl get pla <name> -o yaml\`).

  -o, --output json|yaml   the same as a document: state, reason, message, phase, ready, revision,
                           conditions, counts, failedNodes and nodes[] with whole messages
  -w, --watch              print again after every change to the release or its activations
                           (watches, not polling) until Ctrl-C`,
    [
      'kubectl pluginrelease status echo',
      'kubectl pluginrelease status echo -o json | jq \'.conditions[] | select(.type == "Ready")\'',
      'kubectl pluginrelease status echo --watch',
      'kubectl pluginrelease status echo -n plugins --context prod',
    ],
  ),
  async run(ctx) {
    const { releases, activations, ref, now, output } = ctx;
    const show = (release: PluginRelease, list: PluginActivation[]) =>
      formatted(
        output,
        () => statusDocument(release, list),
        () => renderStatus(release, list, now()),
      );
    if (!ctx.watch) {
      const release = await releases.get(ref);
      const list = await activations.list(ref.namespace, { labelSelector: `${Labels.release}=${ref.name}` });
      ctx.print(show(release, list.items));
      return 0;
    }
    // Informers re-deliver unchanged objects after a relist: print only what changed.
    let shown = '';
    const code = await ctx.follow((release, list) => {
      if (!release) throw new CommandFailure(`pluginrelease "${ref.name}" was deleted`);
      const versions = [release, ...list].map((o) => o.metadata.resourceVersion).join(',');
      if (versions === shown) return undefined;
      if (shown !== '' && output !== 'json') ctx.print(output === 'yaml' ? '---' : '');
      shown = versions;
      ctx.print(show(release, list));
      return undefined;
    }, ctx.interrupted);
    return code ?? 0;
  },
};

/** What `wait`'s check answers after its one look with --timeout 0 (not an exit code). */
const LOOKED_ONCE = -1;

const wait: PluginCommand = {
  summary: 'Wait until the release is Ready; fail at once when it is Stalled',
  flags: ['timeout'],
  help: helpText(
    'wait <release> [--timeout 5m] [flags]',
    `Watches the release until the controller reports on its current generation, then:
  exits 0 when it is Ready (Ready=True: every targeted node serves the revision, or a dry run passed);
  exits 1 at once when it is Stalled (Stalled=True: a halted rollout, a fleet rollback, an invalid spec,
  a missed progress deadline), printing the reason and the message that says what to do;
  exits 1 when --timeout passes first, saying what the release is doing.
A paused rollout keeps waiting (it says so once on stderr): resume it, or let --timeout end the wait.
\`kubectl wait --for=condition=Ready\` cannot tell Stalled from slow, and waits out its timeout.

  --timeout <duration>   how long to wait: 30s, 5m, 1h (default 5m); 0 checks once and does not wait`,
    [
      'kubectl apply -f release.yaml && kubectl pluginrelease wait echo --timeout 10m',
      'kubectl pluginrelease wait echo || kubectl pluginrelease status echo',
    ],
  ),
  async run(ctx) {
    const { ref } = ctx;
    const name = `pluginrelease "${ref.name}"`;
    const timeout = AbortSignal.timeout(Math.max(1, ctx.timeoutMs));
    let pausedSaid = false;
    let last: StateSummary | undefined;
    const verdict = (release: PluginRelease | undefined): number | undefined => {
      if (!release) throw new CommandFailure(`${name} was deleted while waiting for it`);
      last = releaseState(release);
      if (last.state === 'Ready') {
        ctx.print(`${kindRef(ref.name)} is Ready (${last.reason}): ${last.message}`);
        return 0;
      }
      if (last.state === 'Stalled') {
        throw new CommandFailure(`${name} is Stalled (${last.reason}): ${last.message}`);
      }
      if (last.state === 'Paused' && !pausedSaid) {
        pausedSaid = true;
        console.error(`${name} is paused (${last.reason}); still waiting. ${last.message}`);
      }
      // --timeout 0: this one look is all; the timer alone could fire before the first look.
      return ctx.timeoutMs === 0 ? LOOKED_ONCE : undefined;
    };
    const code = await ctx.follow((release) => verdict(release), AbortSignal.any([timeout, ctx.interrupted]));
    if (code !== undefined && code !== LOOKED_ONCE) return code;
    if (ctx.interrupted.aborted) return 130;
    const now = last
      ? ` it is ${last.state} (${last.reason})${last.message ? `: ${last.message}` : '.'}`
      : '';
    throw new CommandFailure(
      `timed out after ${humanDuration(ctx.timeoutMs)} waiting for ${name} to be Ready;${now}`,
    );
  },
};

const retry: PluginCommand = {
  summary: `Retry the current revision on nodes that failed it (sets ${Annotations.retryAt})`,
  help: helpText(
    'retry <release> [flags]',
    `Sets the annotation ${Annotations.retryAt} to the current unix time. Any new value tells the
controller to try the current revision again on the nodes that rolled it back or failed it, without
editing the spec: fix the cause first (stage the artifact, free the port, ...), then retry.
Nodes that succeeded are left alone. It also removes ${Annotations.abort}, so an aborted revision
rolls out again. Touches no Git-owned field.`,
    [
      'kubectl pluginrelease retry echo',
      'kubectl pluginrelease status echo   # watch the failed nodes try again',
    ],
  ),
  async run({ releases, ref, now }) {
    const release = await releases.get(ref);
    const previous = Number(release.metadata.annotations?.[Annotations.retryAt]);
    // Two retries within one second must still differ: only a new value is a new retry.
    let token = Math.floor(now() / 1000);
    if (Number.isSafeInteger(previous) && previous >= token) token = previous + 1;
    // A retry also lifts an abort of the same revision.
    await releases.mergePatch(ref, {
      metadata: { annotations: { [Annotations.retryAt]: String(token), [Annotations.abort]: null } },
    });
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
  help: helpText(
    'pause <release> [flags]',
    `Sets spec.rollout.paused=true: the controller starts no new node activations. Nodes already in
flight finish; nothing is rolled back. Undo with \`kubectl pluginrelease resume\`. This writes the
spec, as \`flux suspend\` does: under GitOps, set spec.rollout.paused in Git instead, or the next sync
puts it back.`,
    ['kubectl pluginrelease pause echo'],
  ),
  async run({ releases, ref }) {
    const release = await releases.get(ref);
    if (release.spec.rollout?.paused === true) return `${kindRef(ref.name)} already paused`;
    await releases.mergePatch(ref, { spec: { rollout: { paused: true } } });
    return `${kindRef(ref.name)} paused`;
  },
};

/** The Ready condition's reason: what the rollout waits for. */
const readyReason = (release: PluginRelease) =>
  release.status?.conditions?.find((c) => c.type === 'Ready')?.reason;

const promote: PluginCommand = {
  summary: `Continue a rollout paused after its canaries (sets ${Annotations.promote}; spec untouched)`,
  help: helpText(
    'promote <release> [flags]',
    `Sets the annotation ${Annotations.promote} to the revision being rolled out: a rollout waiting after
its canary nodes (reason CanaryPaused, spec.rollout.canary.pauseAfter) continues with the next wave.
The annotation names the revision, so the next revision pauses after its canaries again. It is
metadata, not spec: Argo CD shows no drift and Flux does not revert it.`,
    ['kubectl pluginrelease promote echo'],
  ),
  async run({ releases, ref }) {
    const release = await releases.get(ref);
    const revision = release.status?.revision;
    if (readyReason(release) !== 'CanaryPaused' || revision === undefined) {
      return `${kindRef(ref.name)} is not waiting after its canaries; nothing to promote`;
    }
    await releases.mergePatch(ref, { metadata: { annotations: { [Annotations.promote]: revision } } });
    return `${kindRef(ref.name)} promoted (${Annotations.promote}=${revision})`;
  },
};

const resume: PluginCommand = {
  summary: 'Continue a paused rollout: spec.rollout.paused=false, or promote after the canaries',
  help: helpText(
    'resume <release> [flags]',
    `Continues a rollout: one paused by hand gets spec.rollout.paused=false (a spec field, as Flux's
suspend: under GitOps change it in Git); one waiting after its canary nodes (reason CanaryPaused) is
promoted with the annotation ${Annotations.promote}, as \`kubectl pluginrelease promote\` does,
leaving the spec alone.`,
    ['kubectl pluginrelease resume echo'],
  ),
  async run(context) {
    const { releases, ref } = context;
    const release = await releases.get(ref);
    if (release.spec.rollout?.paused === true) {
      await releases.mergePatch(ref, { spec: { rollout: { paused: false } } });
      return `${kindRef(ref.name)} resumed (spec.rollout.paused=false)`;
    }
    if (readyReason(release) === 'CanaryPaused') return promote.run(context);
    return `${kindRef(ref.name)} not paused`;
  },
};

const abort: PluginCommand = {
  summary: `Stop the rollout in flight and return the nodes it reached (sets ${Annotations.abort})`,
  help: helpText(
    'abort <release> [flags]',
    `Sets the annotation ${Annotations.abort} to the revision being rolled out. While it names that
revision the controller starts it on no further node and sends every node it reached back to the
revision that node served before, a candidate still being probed included; a node that had no
earlier version has its activation deleted, which uninstalls the plugin there. The release is
Stalled (RolloutAborted). The spec still names the aborted version: apply another one, \`undo\`,
or \`retry\` to roll it out again. Metadata only: GitOps tools leave it alone.`,
    ['kubectl pluginrelease abort echo'],
  ),
  async run({ releases, ref }) {
    const release = await releases.get(ref);
    const revision = release.status?.revision;
    if (revision === undefined) return `${kindRef(ref.name)} has rolled nothing out yet; nothing to abort`;
    if (release.status?.phase === 'Ready') {
      return `${kindRef(ref.name)} revision ${revision} is complete on every node; nothing to abort (use undo)`;
    }
    await releases.mergePatch(ref, { metadata: { annotations: { [Annotations.abort]: revision } } });
    return `${kindRef(ref.name)} abort requested (${Annotations.abort}=${revision})\nNodes that revision ${revision} reached return to the revision they served before.`;
  },
};

/** The node-run fields of a spec: what `undo` replaces, and removes when the old revision lacked them. */
const NODE_RUN_FIELDS = [
  'version',
  'artifact',
  'config',
  'handshake',
  'health',
  'serve',
  'process',
  'activation',
] as const;

const undo: PluginCommand = {
  summary: 'Roll the fleet back to the previous revision, or --to-revision N, through the planner',
  help: `Usage: kubectl pluginrelease undo <release> [--to-revision N] [flags]

Writes the node-run spec the controller kept for an earlier revision (status.history, the last
10) back into the release's spec: version, artifact, config, handshake, health, serve, process and
activation. The old revision then rolls out like any new one (canaries, maxUnavailable, probes),
and nodes that kept its snapshot start it from there. Without --to-revision: the newest revision
other than the current one; N is the NUMBER \`kubectl pluginrelease history\` shows.
This edits Git-owned spec fields, as \`kubectl rollout undo\` does: under GitOps, git revert the
commit that changed the version instead; the result is the same revision.

${COMMON_FLAGS}
  --to-revision <N>      the history entry to return to (default: the previous revision)

Examples:
  kubectl pluginrelease undo echo
  kubectl pluginrelease history echo && kubectl pluginrelease undo echo --to-revision 3`,
  flags: ['to-revision'],
  async run({ releases, ref, toRevision }) {
    const release = await releases.get(ref);
    const history = release.status?.history ?? [];
    const current = release.status?.revision;
    const target =
      toRevision !== undefined
        ? history.find((h) => h.number === toRevision)
        : history.find((h) => h.revision !== current);
    if (!target) {
      throw new Error(
        toRevision !== undefined
          ? `pluginrelease "${ref.name}" has no history entry ${toRevision}; \`kubectl pluginrelease history ${ref.name}\` lists them`
          : `pluginrelease "${ref.name}" has no earlier revision to go back to`,
      );
    }
    if (target.revision === current) {
      return `${kindRef(ref.name)} is already on revision ${target.revision} (version ${target.version})`;
    }
    if (!target.nodeRun) {
      throw new Error(
        `history entry ${target.number ?? target.revision} (version ${target.version}) keeps no spec (recorded by an older controller); apply that version by hand`,
      );
    }
    const spec: Record<string, unknown> = { ...release.spec };
    for (const field of NODE_RUN_FIELDS) delete spec[field];
    // replace() carries the resourceVersion read above: a concurrent edit makes this fail, not vanish.
    await releases.replace({ ...release, spec: { ...spec, ...target.nodeRun } as PluginRelease['spec'] });
    return `${kindRef(ref.name)} rolled back to ${target.number !== undefined ? `history entry ${target.number}, ` : ''}version ${target.version} (revision ${target.revision})`;
  },
};

const history: PluginCommand = {
  summary: 'Revisions rolled out and their outcomes, newest first (-o json|yaml)',
  flags: ['output'],
  help: helpText(
    'history <release> [-o json|yaml] [flags]',
    `Prints status.history: each revision's version, outcome (Progressing, Complete, Halted, RolledBack,
Superseded, Probed, Aborted), when it started, how long it took and why it ended. The controller
keeps the last 10, one per revision; the revision the release is on now is marked with *. NUMBER is
what \`undo --to-revision\` takes.

  -o, --output json|yaml   status.history as stored, with "current": the revision the release is on`,
    ['kubectl pluginrelease history echo'],
  ),
  async run({ releases, ref, now, output }) {
    const release = await releases.get(ref);
    return formatted(
      output,
      () => historyDocument(release),
      () => renderHistory(release, now()),
    );
  },
};

export const pluginCommands: Record<string, PluginCommand> = {
  status,
  wait,
  retry,
  pause,
  resume,
  promote,
  abort,
  undo,
  history,
};
