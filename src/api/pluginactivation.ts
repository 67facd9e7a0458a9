// PluginActivation: one per (release, node). The controller writes the spec (the resolved desired
// state for that node); the node's agent writes the status. Each writer owns its own object.
import { z } from 'zod';
import { Kinds } from './group.ts';
import { checkRuntime, NodeRunFields, Retention } from './pluginrelease.ts';
import { conditionList, dnsLabel, dnsSubdomain, resourceSchema, revisionName } from './primitives.ts';

export const ActivationPhase = z.enum([
  'Pending',
  'Staged',
  'Probing',
  'Active',
  'RolledBack',
  'Failed',
  'Probed',
]);
export type ActivationPhase = z.infer<typeof ActivationPhase>;

export const PluginActivationSpec = z
  .object({
    release: z.object({ name: dnsSubdomain(), uid: z.string().max(128).optional() }),
    nodeName: dnsSubdomain(),
    plugin: dnsLabel(),
    version: z.string().min(1).max(128),
    // The agent names directories after revisions, so they are validated here and confined there too.
    revision: revisionName().describe('The revision this node must run (or probe, in a dry run).'),
    ...NodeRunFields,
    retention: Retention.prefault({}),
    dryRun: z.boolean().prefault(false),
    rollbackTo: z
      .object({ revision: revisionName() })
      .optional()
      .describe('Set by RollbackFleet: restore this kept snapshot instead of activating `revision`.'),
    retryAt: z.string().optional().describe('Copied from the release annotation: a new value retries.'),
  })
  .superRefine(checkRuntime);
export type PluginActivationSpec = z.infer<typeof PluginActivationSpec>;
export type PluginActivationSpecInput = z.input<typeof PluginActivationSpec>;

export const HandshakeResult = z.object({
  coreProtocol: z.int(),
  appProtocol: z.int(),
  network: z.enum(['tcp', 'unix']),
  address: z.string(),
  pluginName: z.string().optional(),
  pluginVersion: z.string().optional(),
  capabilities: z.array(z.string()).optional(),
});
export type HandshakeResult = z.infer<typeof HandshakeResult>;

export const ProbeResult = z.object({
  time: z.iso.datetime(),
  probe: z.string(),
  success: z.boolean(),
  message: z.string().max(4096).optional(),
});
export type ProbeResult = z.infer<typeof ProbeResult>;

export const PluginActivationStatus = z.object({
  observedGeneration: z.int().min(0).optional(),
  phase: ActivationPhase.optional(),
  reason: z.string().optional(),
  message: z.string().max(32768).optional(),
  revision: z.string().optional().describe('The revision this status reports on.'),
  dryRun: z.boolean().optional().describe('Whether the attempt this status reports on was a dry run.'),
  rollbackTo: z
    .string()
    .optional()
    .describe('The kept snapshot the attempt this status reports on restored (RollbackFleet).'),
  activeRevision: z.string().optional().describe('The revision `current` points at on the node.'),
  previousRevision: z.string().optional(),
  handshake: HandshakeResult.optional(),
  lastProbe: ProbeResult.optional(),
  attempts: z.int().min(0).optional(),
  restarts: z
    .int()
    .min(0)
    .optional()
    .describe(
      'Times the agent restarted the active plugin after it exited on its own (restartPolicy: Always).',
    ),
  lastExit: z
    .string()
    .max(4096)
    .optional()
    .describe('How the active plugin last exited on its own, and when; with its last stderr lines.'),
  retryAt: z.string().optional().describe('The retry token the agent acted on.'),
  hostAnswer: z
    .string()
    .max(4096)
    .optional()
    .describe("Runtime Host: the host's last try-activate answer (its JSON body, cut at 4 KiB)."),
  lastTransitionTime: z.iso.datetime().optional().describe('When the phase last changed.'),
  conditions: conditionList().optional(),
});
export type PluginActivationStatus = z.infer<typeof PluginActivationStatus>;

export const PluginActivation = resourceSchema(
  Kinds.PluginActivation.kind,
  PluginActivationSpec,
  PluginActivationStatus,
);
export type PluginActivation = z.infer<typeof PluginActivation>;
