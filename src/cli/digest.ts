// `plugin-release digest <path>`: the digest the agent verifies, for writing into spec.artifact.digest.
import { digestPath } from '../agent/digest.ts';

export const help = `Usage: plugin-release digest <path>

Prints sha256:<hex> of a file (its bytes, as sha256sum) or of a directory (a manifest of its entries:
see docs/agent.md). Put the result in spec.artifact.digest or spec.config.digest.

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
    console.log(await digestPath(path));
    return 0;
  } catch (error) {
    console.error(`plugin-release digest: ${(error as Error).message}`);
    return 1;
  }
}
