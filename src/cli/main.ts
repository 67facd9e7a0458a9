// The `plugin-release` command tree: each subcommand lives in src/cli/<name>.ts and exports
// `help` (a string) and `main(argv) → exit code`; this file only dispatches. The dev-only commands (demo,
// devcluster) live in dev/cli/ of a source checkout instead, which the production image does not carry.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { agentVersion } from './version.ts';

interface Command {
  help: string;
  main(argv: string[]): Promise<number>;
}

/** A command in src/cli (`load`), or a file of dev/cli (`dev`). */
type Entry = { summary: string } & ({ load: () => Promise<Command> } | { dev: string });

/**
 * Where the dev commands are. Loading them by a computed URL keeps the build (scripts/build.ts) from
 * following them into dev/; from dist/src/cli/ the same relative path leads to the checkout's dev/ too.
 */
const DEV_CLI = new URL('../../dev/cli/', import.meta.url);

const commands: Record<string, Entry> = {
  controller: { summary: 'Run the PluginRelease controller', load: () => import('./controller.ts') },
  agent: { summary: 'Run the node agent for one node', load: () => import('./agent.ts') },
  keeper: {
    summary: "Hold an agent root's fronts so they outlive the agent",
    load: () => import('./keeper.ts'),
  },
  devcluster: { summary: 'Run the in-process dev Kubernetes API server', dev: 'devcluster.ts' },
  demo: { summary: 'Run the end-to-end demo on a dev cluster', dev: 'demo.ts' },
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
    'Exit codes: 0 success, 1 invalid input or error, 2 probe failed (try-activate) or a dev command run',
    'outside a source checkout. See docs/cli.md.',
  ].join('\n');
}

/** Runs one command line and returns its exit code. `devCli` is where the dev commands are looked for. */
export async function run(argv: string[], devCli = DEV_CLI): Promise<number> {
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
  let command: Command;
  if ('dev' in entry) {
    const file = new URL(entry.dev, devCli);
    // Only a missing file means "not a checkout"; a dev module that fails to load throws as any other.
    if (!existsSync(file)) {
      console.error(
        `plugin-release ${name}: this command runs from a source checkout of plugin-release, not from the ` +
          `production image (${fileURLToPath(file)} is absent). Clone the repository, run \`npm ci\`, ` +
          'then `npm run demo` or `npx plugin-release devcluster`.',
      );
      return 2;
    }
    command = await import(file.href);
  } else {
    command = await entry.load();
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.help);
    return 0;
  }
  return command.main(rest);
}
