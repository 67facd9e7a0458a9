// Placeholder for `plugin-release devcluster`: replaced by the issue that builds it.

export const help = 'plugin-release devcluster: not built yet.';

export async function main(_argv: string[]): Promise<number> {
  console.error('plugin-release devcluster is not built yet.');
  return 1;
}
