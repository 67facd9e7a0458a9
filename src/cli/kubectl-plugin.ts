// `kubectl pluginrelease …` (the kubectl-pluginrelease executable): inspect and steer PluginReleases
// with kubectl's own --kubeconfig/--context/--namespace conventions. Subcommands: kubectl-plugin/.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { UsageError } from './flags.ts';
import { type CommandFlag, pluginCommands } from './kubectl-plugin/commands.ts';

const width = Math.max(...Object.keys(pluginCommands).map((c) => c.length + ' <release>'.length));

export const help = `Usage: kubectl pluginrelease <command> <release> [flags]

Inspect and steer PluginReleases (pluginrelease.io/v1alpha1) in the cluster kubectl talks to.

Commands:
${Object.entries(pluginCommands)
  .map(([name, c]) => `  ${`${name} <release>`.padEnd(width)}  ${c.summary}`)
  .join('\n')}

Flags (anywhere after the plugin name, as kubectl passes them through):
  -o, --output json|yaml status and history as a document
  -w, --watch            status: print again after every change, until Ctrl-C
  --timeout <duration>   wait: how long, e.g. 30s, 5m, 1h (default 5m)
  --kubeconfig <path>    kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)
  --context <name>       kubeconfig context (default: the current context)
  -n, --namespace <ns>   the release's namespace (default: the context's namespace)
  -h, --help             show this help, or a command's with \`<command> --help\`
  --version              print the plugin's version

Examples:
  kubectl pluginrelease status echo
  kubectl pluginrelease status echo -o json
  kubectl pluginrelease wait echo --timeout 10m
  kubectl pluginrelease pause echo -n plugins
  kubectl pluginrelease resume echo --context prod
  kubectl pluginrelease retry echo && kubectl pluginrelease status echo
  kubectl pluginrelease history echo
  kubectl pluginrelease undo echo --to-revision 2

Exit codes: 0 success; 1 invalid input, release not found, an API or kubeconfig error, or (wait) a
Stalled release or a timeout.
Install: put bin/kubectl-pluginrelease.js on PATH as kubectl-pluginrelease (see docs/cli.md).`;

const Flags = z.object({
  kubeconfig: z.string().min(1, '--kubeconfig needs a path').optional(),
  context: z.string().min(1, '--context needs a name').optional(),
  namespace: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, '--namespace must be a DNS label (lower case, digits, -)')
    .max(63)
    .optional(),
  output: z.enum(['json', 'yaml'], { error: '--output must be json or yaml' }).optional(),
  watch: z.boolean().default(false),
  timeout: z
    .string()
    .regex(/^(0|(\d+h)?(\d+m)?(\d+s)?)$/, '--timeout must be a duration such as 30s, 5m, 1h30m or 0')
    .refine((t) => t !== '', '--timeout must be a duration such as 30s, 5m, 1h30m or 0')
    .default('5m'),
  help: z.boolean().default(false),
  version: z.boolean().default(false),
  'to-revision': z
    .string()
    .regex(/^[1-9][0-9]*$/, '--to-revision needs a history NUMBER (kubectl pluginrelease history)')
    .transform(Number)
    .optional(),
});

/** `1h30m`, `45s`, `0` → milliseconds (the regex above admits only these forms). */
export function durationMs(text: string): number {
  const unit = { h: 3_600_000, m: 60_000, s: 1000 } as const;
  let ms = 0;
  for (const [, n, u] of text.matchAll(/(\d+)([hms])/g)) ms += Number(n) * unit[u as keyof typeof unit];
  return ms;
}

/** The flags a command takes beyond the common ones, as typed on the command line. */
const FLAG_NAMES: Record<CommandFlag, string> = {
  output: '--output',
  watch: '--watch',
  timeout: '--timeout',
  'to-revision': '--to-revision',
};

export interface Invocation {
  command: string | undefined;
  release: string | undefined;
  flags: z.infer<typeof Flags>;
}

/** Parses the plugin's argv (flags anywhere, as kubectl users type them). Throws UsageError. */
export function parseInvocation(argv: string[]): Invocation {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        kubeconfig: { type: 'string' },
        context: { type: 'string' },
        namespace: { type: 'string', short: 'n' },
        output: { type: 'string', short: 'o' },
        watch: { type: 'boolean', short: 'w' },
        timeout: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean' },
        'to-revision': { type: 'string' },
      },
    });
  } catch (error) {
    // node:util's own wording explains `--` escaping at length; name the flag as kubectl does.
    const e = error as Error & { code?: string };
    const flag = /'([^']+)'/.exec(e.message)?.[1];
    throw new UsageError(
      e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && flag ? `unknown flag: ${flag}` : e.message,
    );
  }
  const flags = Flags.safeParse(parsed.values);
  if (!flags.success) throw new UsageError(flags.error.issues.map((i) => i.message).join('; '));
  const [command, release, ...extra] = parsed.positionals;
  if (flags.data.help || flags.data.version) return { command, release, flags: flags.data };
  if (command === undefined) throw new UsageError('a command is required');
  if (!Object.hasOwn(pluginCommands, command)) throw new UsageError(`unknown command "${command}"`);
  if (release === undefined) throw new UsageError(`${command} needs a release name`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const takes = pluginCommands[command]?.flags ?? [];
  for (const flag of Object.keys(FLAG_NAMES) as CommandFlag[]) {
    if (parsed.values[flag] !== undefined && !takes.includes(flag))
      throw new UsageError(`${command} does not take ${FLAG_NAMES[flag]}`);
  }
  return { command, release, flags: flags.data };
}

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
  return pkg.version as string;
}

/** Runs one invocation; prints results on stdout and errors on stderr; resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseInvocation(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    const known = argv.find((a) => Object.hasOwn(pluginCommands, a));
    console.error(
      `error: ${error.message}\nSee 'kubectl pluginrelease ${known ? `${known} ` : ''}--help' for usage.`,
    );
    return 1;
  }
  const { command: name, release, flags } = invocation;
  if (flags.version) {
    console.log(version());
    return 0;
  }
  const command =
    name !== undefined && Object.hasOwn(pluginCommands, name) ? pluginCommands[name] : undefined;
  if (flags.help) {
    console.log(command?.help ?? help);
    return 0;
  }
  if (!command || release === undefined) return 1; // parseInvocation already refused these

  // The Kubernetes client loads only now: --help and usage errors stay instant.
  const { runAgainstCluster } = await import('./kubectl-plugin/cluster.ts');
  const { 'to-revision': toRevision, ...access } = flags;
  return runAgainstCluster(command, release, access, {
    output: flags.output,
    watch: flags.watch,
    timeoutMs: durationMs(flags.timeout),
    ...(toRevision !== undefined ? { toRevision } : {}),
  });
}
