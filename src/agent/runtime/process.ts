// Plugin processes: spawn detached, read the handshake, adopt after a restart, stop by process group.
import type { LaunchOptions, PluginProcess, PluginProcessRecord } from './types.ts';

export async function launchPlugin(_opts: LaunchOptions): Promise<PluginProcess> {
  throw new Error('not implemented yet');
}

export function adoptPlugin(_record: PluginProcessRecord): PluginProcess | undefined {
  throw new Error('not implemented yet');
}
