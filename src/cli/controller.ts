// Placeholder for `plugin-release controller`: replaced by the issue that builds it.

export const help = 'plugin-release controller: not built yet.';

export async function main(_argv: string[]): Promise<number> {
  console.error('plugin-release controller is not built yet.');
  return 1;
}
