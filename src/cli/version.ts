// The version a plugin-release process reports: the package's, or the image's build id when set.
import { readFileSync } from 'node:fs';

/** `$PLUGIN_RELEASE_BUILD` (an image's build id) or the package version. */
export function agentVersion(): string {
  if (process.env.PLUGIN_RELEASE_BUILD) return process.env.PLUGIN_RELEASE_BUILD;
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return pkg.version as string;
}
