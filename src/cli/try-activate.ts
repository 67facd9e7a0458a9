// `plugin-release try-activate`: stage and probe a release's candidate on this machine, never swap.
import { existsSync } from 'node:fs';
import { readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { parse } from 'yaml';
import { z } from 'zod';
import { ActivationError } from '../agent/errors.ts';
import { LocalFronts } from '../agent/front/fronts.ts';
import { hostPluginDir, hostReleaseDir } from '../agent/host/layout.ts';
import { NodeEngine } from '../agent/node-engine.ts';
import { isSameProcess, readProcessIdentity } from '../agent/runtime/index.ts';
import { pluginDir, readLinkRevision, releaseDir, runRoot } from '../agent/store.ts';
import { pluginReleaseCrd } from '../api/crd.ts';
import {
  DNS_SUBDOMAIN_PATTERN,
  formatIssues,
  NodeReason,
  PluginActivationSpec,
  PluginRelease,
  type Runtime,
  revisionOf,
} from '../api/index.ts';
import { prune, type Schema } from '../api/prune.ts';

export const help = `Usage: plugin-release try-activate --release <file.yaml> --staging-root <dir> --root <dir> [--node <name>]

Stages the release's artifact and config under --root, starts the candidate, checks its handshake and
contract, runs its probes, then stops it. Nothing is swapped: whatever is active keeps serving. For a
release with runtime Host, checks the host's health and POSTs the config to the host's try-activate
instead; the host is never told to change (docs/host-runtime.md).
Prints one JSON object: {"status":"probe_ok"|"probe_failed","revision","handshake","capabilities","reason",
"message","recovery"} (recovery: what repairing --root took, by plugin; with runtime Host also "host": the
host's try-activate answer), or {"status":"error","reason","message"}
when --root could not be recovered or the run failed outright (docs/recovery.md). The candidate's release and
run directories are removed afterwards, unless --root already held them.

--node names this machine for \${PLUGIN_RELEASE_NODE} in the release (default: localhost).

The file is checked as the API server checks it with kubectl's default strict field validation: a field
the schema does not know (a typo such as "helth:") is refused, naming it, with exit 1.

--root is a scratch directory of your own, never the root a running agent uses: that one is locked
(RootLocked), and its fronts are taken (FrontUnavailable).

Exit codes: 0 probe_ok, 2 probe_failed, 1 error or invalid input.

Example:
  plugin-release try-activate --release examples/minimal.yaml \\
    --staging-root /var/lib/plugin-release/staging --root "$(mktemp -d)"`;

const Flags = z.object({
  release: z.string().min(1, '--release is required'),
  'staging-root': z.string().min(1, '--staging-root is required'),
  root: z.string().min(1, '--root is required'),
  node: z.string().regex(DNS_SUBDOMAIN_PATTERN, '--node must be a DNS subdomain').prefault('localhost'),
});

export async function main(argv: string[]): Promise<number> {
  let flags: Flags;
  try {
    flags = parseFlags(argv);
  } catch (error) {
    console.error(`plugin-release try-activate: ${(error as Error).message}\n\n${help}`);
    return 1;
  }
  let candidate: Candidate;
  try {
    candidate = await readCandidate(flags);
  } catch (error) {
    console.error(`plugin-release try-activate: ${flags.release}: ${(error as Error).message}`);
    return 1;
  }
  return dryRun(flags, candidate);
}

type Flags = z.infer<typeof Flags>;
interface Candidate {
  spec: PluginActivationSpec;
  revision: string;
}

function parseFlags(argv: string[]): Flags {
  const { values } = parseArgs({
    args: argv,
    options: {
      release: { type: 'string' },
      'staging-root': { type: 'string' },
      root: { type: 'string' },
      node: { type: 'string' },
    },
  });
  const parsed = Flags.safeParse({ release: '', 'staging-root': '', root: '', ...values });
  if (!parsed.success) throw new Error(formatIssues(parsed.error));
  return parsed.data;
}

/** The release file as the API server would take it (unknown fields refused), as this node's dry run. */
async function readCandidate(flags: Flags): Promise<Candidate> {
  const doc = parse(await readFile(flags.release, 'utf8'));
  const unknown = unknownFields(doc);
  if (unknown.length > 0) {
    throw new Error(
      `${unknown.map((u) => `unknown field "${u}"`).join(', ')} (kubectl apply refuses them too: ` +
        'check the spelling against docs/api-reference.md)',
    );
  }
  const parsed = PluginRelease.safeParse(doc);
  if (!parsed.success) throw new Error(formatIssues(parsed.error));
  const release = parsed.data;
  const revision = revisionOf(release.spec);
  const spec = PluginActivationSpec.safeParse({
    ...release.spec,
    release: { name: release.metadata.name ?? 'try-activate' },
    nodeName: flags.node,
    revision,
    dryRun: true,
  });
  if (!spec.success) throw new Error(formatIssues(spec.error));
  return { spec: spec.data, revision };
}

/** Runs the dry run on this node's root and prints its one JSON line; exit 0 probe_ok, 2 probe_failed. */
async function dryRun(flags: Flags, { spec, revision }: Candidate): Promise<number> {
  let leftovers: { remove(): Promise<void> } | undefined;
  let engine: NodeEngine | undefined;
  let fronts: LocalFronts | undefined;
  try {
    leftovers = await leftoversOf(flags.root, spec.plugin, revision, spec.runtime);
    const logger = pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2));
    // Our own fronts, so they are let go of even when a plugin's recovery failed with its front open.
    fronts = new LocalFronts(logger);
    engine = new NodeEngine({ root: flags.root, stagingRoot: flags['staging-root'], logger, fronts });
    const recovery = await engine.recover();
    const status = await engine.activate(spec);
    const ok = status.phase === 'Probed';
    console.log(
      JSON.stringify({
        status: ok ? 'probe_ok' : 'probe_failed',
        revision,
        handshake: status.handshake ?? null,
        capabilities: status.handshake?.capabilities ?? [],
        reason: status.reason,
        message: status.message,
        recovery,
        ...(spec.runtime === 'Host' ? { host: hostAnswer(status.hostAnswer) } : {}),
      }),
    );
    return ok ? 0 : 2;
  } catch (error) {
    // Recovery and the engine name what they know (ActivationError); anything else is still one JSON line.
    const named = error instanceof ActivationError;
    console.log(
      JSON.stringify({
        status: 'error',
        revision,
        reason: named ? error.reason : NodeReason.InternalError,
        message: named
          ? error.message
          : `try-activate failed unexpectedly: ${(error as Error)?.message ?? String(error)}.`,
      }),
    );
    return 1;
  } finally {
    await engine?.close().catch(() => {});
    await fronts?.detach().catch(() => {});
    await leftovers?.remove().catch(() => {});
  }
}

/**
 * The fields of `doc` that the PluginRelease CRD's schema does not declare, as `spec.helth`: the API
 * server prunes them, and refuses them under kubectl's default fieldValidation=Strict. zod alone would
 * drop them silently, so a typo'd probe would mean no probe at all.
 */
function unknownFields(doc: unknown): string[] {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) return [];
  const schema = pluginReleaseCrd().spec.versions[0]?.schema.openAPIV3Schema as Schema;
  return prune(structuredClone(doc) as Parameters<typeof prune>[0], schema);
}

/**
 * What a dry run must not leave in --root, noted before it starts: afterwards `remove` deletes the
 * candidate's release directory, unless it was there before or a link names it, and the run directories
 * it created for the candidate's processes that no longer run.
 */
async function leftoversOf(
  root: string,
  plugin: string,
  revision: string,
  runtime: Runtime,
): Promise<{ remove(): Promise<void> }> {
  const layout =
    runtime === 'Host'
      ? { dir: hostPluginDir(root, plugin), release: hostReleaseDir(root, plugin, revision) }
      : { dir: pluginDir(root, plugin), release: releaseDir(root, plugin, revision) };
  const releaseExisted = existsSync(layout.release);
  const runDirsBefore = new Set(await readdir(runRoot(root, plugin)).catch(() => []));
  return {
    async remove() {
      for (const name of await readdir(runRoot(root, plugin)).catch(() => [])) {
        if (runDirsBefore.has(name) || !name.startsWith(`${revision}-`)) continue;
        const runDir = join(runRoot(root, plugin), name);
        const identity = readProcessIdentity(runDir);
        if (identity && isSameProcess(identity.pid, identity.startTime)) continue; // it serves: keep it
        await rm(runDir, { recursive: true, force: true });
      }
      if (releaseExisted) return;
      const linked = [
        await readLinkRevision(layout.dir, 'current'),
        await readLinkRevision(layout.dir, 'previous'),
      ];
      if (!linked.includes(revision)) await rm(layout.release, { recursive: true, force: true });
    },
  };
}

/** The host's try-activate answer as JSON when it is JSON, else as the text it was; null when none came. */
function hostAnswer(answer: string | undefined): unknown {
  if (answer === undefined) return null;
  try {
    return JSON.parse(answer);
  } catch {
    return answer;
  }
}
