// PluginRelease: the user's object. Its zod schema is the single source of truth for types,
// validation, defaults and the generated CRD.
import { z } from 'zod';
import { Kinds } from './group.ts';
import {
  absolutePath,
  conditionList,
  digest,
  dnsLabel,
  intOrPercent,
  relativePath,
  resourceSchema,
  SERVE_ADDRESS_PATTERN,
  seconds,
} from './primitives.ts';

export const Artifact = z
  .object({
    path: absolutePath().describe(
      'Where the artifact is staged on each node: a file or a directory. An absolute path without empty, "." or ".." segments.',
    ),
    digest: digest().describe('sha256 of the artifact as computed by `plugin-release digest <path>`.'),
    entrypoint: relativePath()
      .optional()
      .describe(
        'Executable inside a directory artifact, as a relative path without "." or ".." segments. Omit when the artifact is the executable itself.',
      ),
    args: z.array(z.string()).max(64).prefault([]).describe('Arguments passed to the entrypoint (no shell).'),
  })
  .describe('The plugin artifact, already staged on each node by whatever ships releases.');

export const Config = z
  .object({
    path: absolutePath().describe(
      'Where the config file is staged on each node. An absolute path without empty, "." or ".." segments.',
    ),
    digest: digest().describe('sha256 of the config file.'),
  })
  .describe('An optional config file, copied beside the artifact and passed to the plugin.');

export const MagicCookie = z.object({
  key: z
    .string()
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name')
    .describe('Environment variable the plugin checks before it handshakes.'),
  value: z.string().min(1).max(1024).describe('The value the plugin expects.'),
});

export const Handshake = z
  .object({
    protocolVersions: z
      .array(z.int().min(1))
      .min(1)
      .max(16)
      .prefault([1])
      .describe('Application protocol versions the host accepts, as in go-plugin VersionedPlugins.'),
    magicCookie: MagicCookie.prefault({
      key: 'PLUGIN_RELEASE_MAGIC_COOKIE',
      value: 'b3a1c5d2-plugin-release',
    }).describe('go-plugin magic cookie: keeps a plugin binary from being run by accident.'),
    requiredCapabilities: z
      .array(z.string().min(1).max(253))
      .max(64)
      .prefault([])
      .describe('Capabilities the plugin must report. When empty, no contract call is made.'),
    timeoutSeconds: seconds(1, 300).prefault(10).describe('Bound on start-up until the handshake line.'),
  })
  .describe('How the candidate proves it is the plugin it claims to be.');

const probeKinds = ['grpc', 'httpGet', 'tcpSocket', 'exec'] as const;

export const Probe = z
  .object({
    name: dnsLabel().optional().describe('Name used in status and logs; defaults to the probe kind.'),
    grpc: z
      .object({ service: z.string().max(253).prefault('plugin').describe('Health service name to check.') })
      .optional()
      .describe('grpc.health.v1.Health/Check on the plugin address; service "plugin" as go-plugin serves.'),
    httpGet: z
      .object({
        path: z
          .string()
          .regex(/^\//, 'must start with "/"')
          .max(2048)
          .prefault('/healthz')
          .describe('Path to request.'),
      })
      .optional()
      .describe('HTTP GET on the plugin address; any 2xx or 3xx is healthy.'),
    tcpSocket: z.object({}).optional().describe('A TCP (or unix socket) connect to the plugin address.'),
    exec: z
      .object({ command: z.array(z.string().min(1)).min(1).max(64) })
      .optional()
      .describe('A command run without a shell; exit 0 is healthy. PLUGIN_ADDRESS is in its environment.'),
    periodSeconds: seconds(1, 3600).prefault(2).describe('How often the probe runs.'),
    timeoutSeconds: seconds(1, 600).prefault(2).describe('Bound on one probe attempt.'),
    successThreshold: z
      .int()
      .min(1)
      .max(100)
      .prefault(1)
      .describe('Consecutive successes that pass the probe.'),
    failureThreshold: z
      .int()
      .min(1)
      .max(100)
      .prefault(3)
      .describe('Consecutive failures that reject the candidate.'),
  })
  .refine((p) => probeKinds.filter((k) => p[k] !== undefined).length === 1, {
    message: 'exactly one of grpc, httpGet, tcpSocket or exec must be set',
  })
  .meta({ oneOf: probeKinds.map((k) => ({ required: [k] })) });
export type Probe = z.infer<typeof Probe>;

export const Health = z
  .object({
    probes: z
      .array(Probe)
      .max(16)
      .prefault([])
      .describe('All must pass; empty means the handshake suffices.'),
    soakSeconds: seconds(0, 3600)
      .prefault(0)
      .describe('After every probe passed, keep probing this long before the swap.'),
  })
  .describe('How the candidate proves it is healthy before (and after) it takes traffic.');

export const Serve = z
  .object({
    address: z
      .string()
      .regex(SERVE_ADDRESS_PATTERN, 'must be unix:///absolute/path.sock or tcp://host:port')
      .optional()
      .describe(
        'The stable front the agent owns: unix:///absolute/path.sock or tcp://host:port. Default: unix://<agent root>/plugins/<plugin>/front.sock.',
      ),
  })
  .describe('Where clients reach the plugin on each node, across swaps.');

export const ProcessOptions = z
  .object({
    env: z
      .array(z.object({ name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/), value: z.string() }))
      .max(64)
      .prefault([])
      .describe('Extra environment for the plugin process.'),
    runAsUser: z.int().min(0).optional().describe('uid for the plugin process (the agent must be root).'),
    runAsGroup: z.int().min(0).optional().describe('gid for the plugin process.'),
    resources: z
      .object({
        memoryMax: z
          .string()
          .regex(/^[0-9]+(Ki|Mi|Gi|Ti|k|K|M|G|T)?$/, 'must be a memory quantity such as 256Mi')
          .optional()
          .describe("memory.max of the plugin's cgroup, e.g. 256Mi. Default: none."),
        cpuMax: z
          .string()
          .regex(/^([0-9]+m|[0-9]+(\.[0-9]{1,3})?)$/, 'must be a CPU quantity such as 500m or 2')
          .optional()
          .describe("cpu.max of the plugin's cgroup as a Kubernetes CPU quantity (500m, 2). Default: none."),
      })
      .optional()
      .describe(
        'Limits of the plugin process and its descendants (cgroup v2). Default: none. Where the node cannot ' +
          'give the plugin a cgroup with these controllers, they are not applied and the activation says so.',
      ),
  })
  .describe('How the agent runs the plugin process.');

export const ActivationStrategy = z.enum(['TryActivate', 'Recreate']);
export type ActivationStrategy = z.infer<typeof ActivationStrategy>;

export const Activation = z
  .object({
    strategy: ActivationStrategy.prefault('TryActivate').describe(
      'TryActivate probes the candidate beside the active version; Recreate stops the old one first (legacy).',
    ),
    drainSeconds: seconds(0, 3600).prefault(5).describe('How long the old process serves open connections.'),
    verifySeconds: seconds(0, 3600)
      .prefault(5)
      .describe('Post-swap window in which a failing probe restores the previous version.'),
  })
  .describe('How a node switches to the candidate.');

export const FailurePolicy = z.enum(['Halt', 'RollbackFleet']);
export type FailurePolicy = z.infer<typeof FailurePolicy>;

export const Rollout = z
  .object({
    nodeSelector: z
      .record(z.string(), z.string())
      .prefault({})
      .describe('Labels a Node must carry to be targeted. Empty targets every node.'),
    maxUnavailable: intOrPercent()
      .prefault(1)
      .describe(
        'Nodes in flight at once: a count of at least 1, or a percentage of targeted nodes from "0%" to "100%" (rounded up, at least 1 node).',
      ),
    canary: z
      .object({
        nodes: z.int().min(0).max(1000).prefault(0).describe('Nodes that go first, one at a time.'),
        pauseAfter: z.boolean().prefault(false).describe('Pause the rollout once the canaries are Active.'),
      })
      .prefault({}),
    paused: z.boolean().prefault(false).describe('Start no new node activations.'),
    failurePolicy: FailurePolicy.prefault('Halt').describe(
      'Halt stops further waves; RollbackFleet also returns already-updated nodes to the previous revision.',
    ),
    progressDeadlineSeconds: seconds(10, 86400)
      .prefault(600)
      .describe('A node activation in flight longer than this counts as failed.'),
  })
  .describe('How the controller spreads a revision over the fleet.');

export const Retention = z.object({
  keepSnapshots: z
    .int()
    .min(0)
    .max(20)
    .prefault(2)
    .describe('Old releases kept on disk besides current and previous.'),
});

export const Runtime = z.enum(['Process', 'Host']);
export type Runtime = z.infer<typeof Runtime>;

/** `${PLUGIN_RELEASE_NODE}` in a host field is replaced by the node's name on the node. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: the placeholder itself, not a template.
export const NODE_PLACEHOLDER = '${PLUGIN_RELEASE_NODE}';
/** The host's admin API: loopback http, or a unix socket (after the node placeholder is replaced). */
export const HOST_URL_PATTERN =
  /^(http:\/\/(127\.0\.0\.1|localhost|\[::1\]):[0-9]{1,5}|unix:\/\/\/[^\s?#]+)$/;

const hostPath = (fallback: string, what: string) =>
  z
    .object({
      path: z
        .string()
        .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/{}-]*$/, 'must be an absolute URL path')
        .max(1024)
        .prefault(fallback)
        .describe(what),
    })
    .prefault({});

export const HostSpec = z
  .object({
    url: z
      .string()
      .max(1024)
      .regex(HOST_URL_PATTERN, 'must be http://127.0.0.1:PORT, http://localhost:PORT or unix:///path.sock')
      .describe(
        `The host's admin API on each node: loopback http or a unix socket. ${NODE_PLACEHOLDER} is replaced by the node's name.`,
      ),
    tokenFile: absolutePath()
      .optional()
      .describe('A file on the node holding a bearer token, sent as "Authorization: Bearer <token>".'),
    timeoutSeconds: seconds(1, 300).prefault(10).describe('Bound on each request to the host.'),
    tryActivate: hostPath(
      '/api/workflow/try-activate',
      'POST the candidate config: builds it without touching the active one.',
    ),
    activate: hostPath('/api/workflow/reload', 'POST a config to make it live (also the rollback).'),
    health: z
      .object({
        path: z
          .string()
          .regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, 'must be an absolute URL path')
          .max(1024)
          .prefault('/healthz')
          .describe('GET: 2xx is healthy.'),
        periodSeconds: seconds(1, 3600).prefault(1).describe('How often health is checked while verifying.'),
        failureThreshold: z
          .int()
          .min(1)
          .max(100)
          .prefault(2)
          .describe('Consecutive failed checks after the swap that restore the previous config.'),
      })
      .prefault({}),
    plugins: z
      .object({
        dir: absolutePath().describe(
          'Where the host loads plugins from; the artifact is installed as <dir>/<plugin>. The directory must hold a .plugin-release-managed file.',
        ),
        reload: hostPath(
          '/api/v1/plugins/{plugin}/reload',
          'POST: load the plugin now in place at <dir>/<plugin>; {plugin} is replaced by the plugin name.',
        ),
      })
      .optional()
      .describe('Where the artifact, when the release ships one, is installed for the host.'),
  })
  .describe('The plugin host the Host runtime drives through its admin API (docs/host-runtime.md).');
export type HostSpec = z.infer<typeof HostSpec>;

/** What a node needs to stage, start, judge and switch to a revision: shared by both kinds' specs. */
export const NodeRunFields = {
  runtime: Runtime.prefault('Process').describe(
    "Process runs the plugin as the agent's own child behind its front; Host drives an existing plugin host.",
  ),
  host: HostSpec.optional(),
  artifact: Artifact.optional().describe('Required for runtime Process; for Host, a plugin to install.'),
  config: Config.optional(),
  handshake: Handshake.prefault({}),
  health: Health.prefault({}),
  serve: Serve.prefault({}),
  process: ProcessOptions.prefault({}),
  activation: Activation.prefault({}),
};

/** The rules between `runtime` and the fields it needs, checked wherever NodeRunFields are parsed. */
export function checkRuntime(
  spec: {
    runtime: Runtime;
    host?: HostSpec | undefined;
    artifact?: unknown;
    config?: unknown;
    activation: { strategy: ActivationStrategy };
  },
  ctx: z.RefinementCtx,
): void {
  const issue = (path: string[], message: string) => ctx.addIssue({ code: 'custom', path, message });
  if (spec.runtime === 'Process') {
    if (!spec.artifact) issue(['artifact'], 'is required with runtime Process');
    if (spec.host) issue(['host'], 'is only used with runtime Host');
    return;
  }
  if (!spec.host) {
    issue(['host'], 'is required with runtime Host');
    return;
  }
  if (!spec.artifact && !spec.config) issue(['config'], 'runtime Host needs a config, an artifact, or both');
  if (spec.artifact && !spec.host.plugins) issue(['host', 'plugins'], 'is required to install an artifact');
  if (spec.activation.strategy !== 'TryActivate')
    issue(['activation', 'strategy'], 'must be TryActivate with runtime Host: the host swaps in place');
}

export const PluginReleaseSpec = z
  .object({
    plugin: dnsLabel().describe('Plugin name; one release per plugin per node.'),
    version: z.string().min(1).max(128).describe('The version being rolled out, as the plugin reports it.'),
    ...NodeRunFields,
    rollout: Rollout.prefault({}),
    dryRun: z.boolean().prefault(false).describe('Stage and probe on every node, never swap.'),
    retention: Retention.prefault({}),
  })
  .superRefine(checkRuntime);
export type PluginReleaseSpec = z.infer<typeof PluginReleaseSpec>;
export type PluginReleaseSpecInput = z.input<typeof PluginReleaseSpec>;

export const ReleasePhase = z.enum(['Pending', 'Progressing', 'Paused', 'Ready', 'Stalled', 'Probed']);
export type ReleasePhase = z.infer<typeof ReleasePhase>;

const count = () => z.int().min(0).prefault(0);
export const NodeCounts = z.object({
  total: count(),
  pending: count(),
  staged: count(),
  probing: count(),
  active: count(),
  rolledBack: count(),
  failed: count(),
  probed: count(),
  unavailable: count().describe(
    'Of the active nodes, those whose plugin process is down while the agent restarts it (not ready).',
  ),
  serving: count().describe('Nodes where a revision of the plugin serves (any revision, process up).'),
  upToDate: count().describe('Nodes serving the revision being rolled out (process up).'),
});
export type NodeCounts = z.infer<typeof NodeCounts>;

export const MAX_FAILED_NODES = 20;
export const MAX_HISTORY = 10;

export const FailedNode = z.object({
  node: z.string(),
  revision: z.string(),
  phase: z.string(),
  reason: z.string(),
  message: z.string().max(4096),
});
export type FailedNode = z.infer<typeof FailedNode>;

export const RevisionOutcome = z.enum([
  'Progressing',
  'Complete',
  'Halted',
  'RolledBack',
  'Superseded',
  'Probed',
  'Aborted',
]);
export type RevisionOutcome = z.infer<typeof RevisionOutcome>;

/** What a node runs for a revision: the spec fields `kubectl pluginrelease undo` writes back. */
export const NodeRunSpec = z.object({
  version: z.string().min(1).max(128),
  ...NodeRunFields,
});
export type NodeRunSpec = z.infer<typeof NodeRunSpec>;

export const HistoryEntry = z.object({
  number: z
    .int()
    .min(1)
    .optional()
    .describe("Increases with every entry, as a ControllerRevision's revision: `undo --to-revision N`."),
  revision: z.string(),
  version: z.string(),
  outcome: RevisionOutcome,
  startedAt: z.iso.datetime(),
  finishedAt: z.iso.datetime().optional().describe('When the entry last reached a final outcome.'),
  message: z.string().max(4096).optional().describe('Why it ended (or what it waits for).'),
  nodeRun: NodeRunSpec.optional().describe('The node-run spec of the revision, kept for undo.'),
});
export type HistoryEntry = z.infer<typeof HistoryEntry>;

export const PluginReleaseStatus = z.object({
  observedGeneration: z.int().min(0).optional().describe('The metadata.generation this status describes.'),
  revision: z.string().optional().describe('The revision being rolled out.'),
  phase: ReleasePhase.optional().describe('One-word summary for `kubectl get`.'),
  ready: z
    .string()
    .optional()
    .describe('Nodes where the plugin serves (any revision) / targeted nodes, as "n/m".'),
  nodes: NodeCounts.optional().describe('Targeted nodes by the phase of their activation.'),
  failedNodes: z
    .array(FailedNode)
    .max(MAX_FAILED_NODES)
    .optional()
    .describe('Nodes that rolled back or failed the current revision, with the reason.'),
  history: z
    .array(HistoryEntry)
    .max(MAX_HISTORY)
    .optional()
    .describe('Recent revisions and their outcomes, newest first.'),
  retryAt: z.string().optional().describe('The last `pluginrelease.io/retry-at` value acted on.'),
  conditions: conditionList().optional(),
});
export type PluginReleaseStatus = z.infer<typeof PluginReleaseStatus>;

export const PluginRelease = resourceSchema(Kinds.PluginRelease.kind, PluginReleaseSpec, PluginReleaseStatus);
export type PluginRelease = z.infer<typeof PluginRelease>;
