// The `plugin-release` command tree: each subcommand lives in src/cli/<name>.ts and exports
// `help` (a string) and `main(argv) → exit code`; this file only dispatches.
import { agentVersion } from './version.ts';

interface Command {
  help: string;
  main(argv: string[]): Promise<number>;
}

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  controller: { summary: 'Run the PluginRelease controller', load: () => import('./controller.ts') },
  agent: { summary: 'Run the node agent for one node', load: () => import('./agent.ts') },
  keeper: {
    summary: "Hold an agent root's fronts so they outlive the agent",
    load: () => import('./keeper.ts'),
  },
  devcluster: {
    summary: 'Run the in-process dev Kubernetes API server',
    load: () => import('./devcluster.ts'),
  },
  demo: { summary: 'Run the end-to-end demo on a dev cluster', load: () => import('./demo.ts') },
  'try-activate': {
    summary: 'Stage and probe a release on this machine, never swap',
    load: () => import('./try-activate.ts'),
  },
  digest: { summary: 'Print the sha256 digest of a file or directory', load: () => import('./digest.ts') },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return [
    'Usage: plugin-release <command> [flags]',
    '',
    'Commands:',
    ...lines,
    '',
    'Run `plugin-release <command> --help` for the flags and examples of a command.',
    'Exit codes: 0 success, 1 invalid input or error, 2 probe failed (try-activate). See docs/cli.md.',
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  if (name === '--version' || name === '-v') {
    console.log(agentVersion());
    return 0;
  }
  const entry = commands[name];
  if (!entry) {
    console.error(`plugin-release: unknown command "${name}"\n\n${usage()}`);
    return 1;
  }
  const command = await entry.load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  return command.main(rest);
}
