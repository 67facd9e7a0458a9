// Placeholder for `plugin-release digest`: replaced by the issue that builds it.

export const help = 'plugin-release digest: not built yet.';

export async function main(_argv: string[]): Promise<number> {
  console.error('plugin-release digest is not built yet.');
  return 1;
}
