// Placeholder for `plugin-release try-activate`: replaced by the issue that builds it.

export const help = 'plugin-release try-activate: not built yet.';

export async function main(_argv: string[]): Promise<number> {
  console.error('plugin-release try-activate is not built yet.');
  return 1;
}
