// Stages the example echo plugin (examples/plugins/echo) as a release artifact: what the demo, the
// end-to-end tests and the benchmarks roll out.
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { digestPath } from '../../src/agent/digest.ts';

const EXAMPLE = join(import.meta.dirname, '../../examples/plugins/echo/echo-plugin.ts');

export interface StagedFile {
  path: string;
  digest: string;
}

/**
 * Creates the artifact directory `dir` with the example plugin, its VERSION and a `plugin` shell
 * entrypoint that runs it on this process's Node (the system `node` may be too old to strip types).
 * `payload`, when given, is copied in as `payload.bin` (not hard-linked: stage refuses hard links).
 */
export async function stageEcho(dir: string, version: string, payload?: string): Promise<StagedFile> {
  await mkdir(dir, { recursive: true });
  await copyFile(EXAMPLE, join(dir, 'echo-plugin.ts'));
  await writeFile(join(dir, 'VERSION'), `${version}\n`);
  const node = `'${process.execPath.replaceAll("'", `'\\''`)}'`;
  await writeFile(
    join(dir, 'plugin'),
    `#!/bin/sh\n# The example echo plugin, run on the Node that staged it.\nexec ${node} "$(dirname "$0")/echo-plugin.ts" "$@"\n`,
    { mode: 0o755 },
  );
  if (payload) await copyFile(payload, join(dir, 'payload.bin'));
  return { path: dir, digest: await digestPath(dir) };
}

/** Writes the echo plugin's JSON config (`requires` names a path that must exist for it to be healthy). */
export async function writeEchoConfig(
  path: string,
  config: { greeting?: string; requires?: string },
): Promise<StagedFile> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, `${JSON.stringify(config)}\n`);
  return { path, digest: await digestPath(path) };
}
