// `plugin-release try-activate`: stage and probe a release's candidate on this machine, never swap.
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { parse } from 'yaml';
import { z } from 'zod';
import { NodeEngine } from '../agent/node-engine.ts';
import { formatIssues, PluginActivationSpec, PluginRelease, revisionOf } from '../api/index.ts';

export const help = `Usage: plugin-release try-activate --release <file.yaml> --staging-root <dir> --root <dir>

Stages the release's artifact and config under --root, starts the candidate, checks its handshake and
contract, runs its probes, then stops it. Nothing is swapped: whatever is active keeps serving.
Prints one JSON object: {"status":"probe_ok"|"probe_failed","revision","handshake","capabilities","reason","message"}.

Exit codes: 0 probe_ok, 2 probe_failed, 1 invalid input.

Example:
  plugin-release try-activate --release examples/minimal.yaml \\
    --staging-root /var/lib/plugin-release/staging --root /var/lib/plugin-release/agent`;

const Flags = z.object({
  release: z.string().min(1, '--release is required'),
  'staging-root': z.string().min(1, '--staging-root is required'),
  root: z.string().min(1, '--root is required'),
});

export async function main(argv: string[]): Promise<number> {
  let flags: z.infer<typeof Flags>;
  try {
    const { values } = parseArgs({
      args: argv,
      options: { release: { type: 'string' }, 'staging-root': { type: 'string' }, root: { type: 'string' } },
    });
    const parsed = Flags.safeParse({ release: '', 'staging-root': '', root: '', ...values });
    if (!parsed.success) throw new Error(formatIssues(parsed.error));
    flags = parsed.data;
  } catch (error) {
    console.error(`plugin-release try-activate: ${(error as Error).message}\n\n${help}`);
    return 1;
  }
  let release: PluginRelease;
  try {
    const doc = parse(await readFile(flags.release, 'utf8'));
    const parsed = PluginRelease.safeParse(doc);
    if (!parsed.success) throw new Error(formatIssues(parsed.error));
    release = parsed.data;
  } catch (error) {
    console.error(`plugin-release try-activate: ${flags.release}: ${(error as Error).message}`);
    return 1;
  }
  const revision = revisionOf(release.spec);
  const spec = PluginActivationSpec.parse({
    ...release.spec,
    release: { name: release.metadata.name ?? 'try-activate' },
    nodeName: 'localhost',
    revision,
    dryRun: true,
  });
  const engine = new NodeEngine({
    root: flags.root,
    stagingRoot: flags['staging-root'],
    logger: pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2)),
  });
  try {
    await engine.recover();
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
      }),
    );
    return ok ? 0 : 2;
  } finally {
    await engine.close();
  }
}
