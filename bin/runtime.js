// Shared start-up of the bin/ entry points, in a checkout (the TypeScript sources) and in the build.
import module from 'node:module';

/**
 * V8 flags per long-running command, measured in docs/benchmarks.md (memory). The agent runs on every
 * node and idles: a 1 MB young generation (the default grows to 16-32 MB and keeps it) and no
 * optimising compilers (their code and output) cost it nothing it needs and save about 35 MB resident;
 * --optimize-for-size (smaller heap growth steps, earlier GCs) about 3.5 MB more. The flags measured
 * and rejected are listed there.
 */
export const NODE_FLAGS = {
  agent: ['--max-semi-space-size=1', '--no-opt', '--no-maglev', '--optimize-for-size'],
  // Smaller heap growth steps and earlier GCs: about 12 MB less at rest, 30 MB less at 1,000 activations.
  controller: ['--optimize-for-size'],
};

/**
 * Exits with a plain message when this Node is older than the 24 the project pins (whatever `node` is
 * first on PATH runs us; a checkout needs its type stripping), then turns on V8's on-disk code cache,
 * which cuts start-up CPU by about 40 %.
 */
export function prepare(command) {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 24) {
    console.error(
      `error: ${command} needs Node 24 or later, but ${process.execPath} is v${process.versions.node}.\n` +
        'Put Node 24 first on PATH (npm scripts and npx do this in the repository), or see docs/cli.md.',
    );
    process.exit(1);
  }
  module.enableCompileCache();
}

/**
 * Re-executes this process with the V8 flags NODE_FLAGS names for `command` unless it already has them
 * (they must be set before the heap exists). process.execve replaces the process image: same pid, same
 * stdio, nothing runs twice, so supervisors, pid files and signals are unaffected. --help does not.
 */
export function applyNodeFlags(argv) {
  const [command, ...rest] = argv;
  const flags = NODE_FLAGS[command];
  if (!flags || rest.includes('--help') || rest.includes('-h') || !process.execve) return;
  if (flags.every((f) => process.execArgv.includes(f))) return;
  const missing = flags.filter((f) => !process.execArgv.includes(f));
  process.execve(process.execPath, [
    process.execPath,
    ...process.execArgv,
    ...missing,
    ...process.argv.slice(1),
  ]);
}
