// Placeholder for `plugin-release demo`: replaced by the issue that builds it.

export const help = 'plugin-release demo: not built yet.';

export async function main(_argv: string[]): Promise<number> {
  console.error('plugin-release demo is not built yet.');
  return 1;
}
