#!/usr/bin/env node
// kubectl plugin entry point (`kubectl pluginrelease …`): Node 24 runs the TypeScript sources directly.
import module from 'node:module';

// kubectl runs whatever `node` is first on PATH; an older one cannot load .ts files, so say so plainly.
const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  console.error(
    `error: kubectl-pluginrelease needs Node 24 or later, but ${process.execPath} is v${process.versions.node}.\n` +
      'Put Node 24 first on PATH, or install the wrapper script from docs/cli.md.',
  );
  process.exit(1);
}
// Every invocation is a fresh process that loads @kubernetes/client-node; V8's on-disk code cache
// (in the OS temp dir) cuts that start-up CPU by about 40 %. It must be on before the import below.
module.enableCompileCache();
const { main } = await import('../src/cli/kubectl-plugin.ts');
process.exitCode = await main(process.argv.slice(2));
