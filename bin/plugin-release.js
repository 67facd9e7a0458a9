#!/usr/bin/env node
// Entry point: Node 24 runs the TypeScript sources directly (type stripping), so no build is needed.
import { prepare } from './runtime.js';

prepare('plugin-release');
const { run } = await import('../src/cli/main.ts');
process.exitCode = await run(process.argv.slice(2));
