#!/usr/bin/env node
// kubectl plugin entry point (`kubectl pluginrelease …`): Node 24 runs the TypeScript sources directly.
import { prepare } from './runtime.js';

prepare('kubectl-pluginrelease');
const { main } = await import('../src/cli/kubectl-plugin.ts');
process.exitCode = await main(process.argv.slice(2));
