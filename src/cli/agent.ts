// Placeholder for `plugin-release agent`: replaced by the issue that builds it.

export const help = 'plugin-release agent: not built yet.';

export async function main(_argv: string[]): Promise<number> {
  console.error('plugin-release agent is not built yet.');
  return 1;
}
