// `plugin-release digest <path>`: the digest the agent verifies, for writing into spec.artifact.digest.
import { realpath } from 'node:fs/promises';
import { digestPath } from '../agent/digest.ts';

export const help = `Usage: plugin-release digest <path>

Prints sha256:<hex> of a file (its bytes, as sha256sum) or of a directory (format v2, a manifest of its
entries: see docs/security.md). Put the result in spec.artifact.digest or spec.config.digest. A symlink
given as <path> is followed, as the agent follows spec.artifact.path; links inside a directory are not.
Devices, FIFOs and sockets have no digest and are refused.

Example:
  plugin-release digest /var/lib/plugin-release/staging/echo/2.0.0`;

export async function main(argv: string[]): Promise<number> {
  const [path, ...rest] = argv;
  if (!path || rest.length > 0 || path.startsWith('-')) {
    const problem = path?.startsWith('-') ? `unknown flag ${path}` : 'expected exactly one path';
    console.error(`plugin-release digest: ${problem}\n\n${help}`);
    return 1;
  }
  try {
    // The agent resolves spec.artifact.path before it copies and hashes, so resolve it here too.
    console.log(await digestPath(await realpath(path)));
    return 0;
  } catch (error) {
    console.error(`plugin-release digest: ${describe(error, path)}`);
    return 1;
  }
}

/** A sentence for what went wrong, not Node's `ENOENT: …, realpath '…'`. */
function describe(error: unknown, path: string): string {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return `${path} does not exist (or a link on the way to it is broken).`;
  if (code === 'EACCES' || code === 'EPERM')
    return `${path} (or a directory in it) is not readable by this user.`;
  if (code === 'ENOTDIR') return `${path}: a component of the path is not a directory.`;
  return (error as Error).message;
}
