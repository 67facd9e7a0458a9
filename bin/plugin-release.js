#!/usr/bin/env node
// Entry point. In a checkout Node 24 runs the TypeScript sources (type stripping); the image runs the
// build of this file (scripts/build.ts), whose imports name the compiled .js.
import { applyNodeFlags, prepare } from './runtime.js';

prepare('plugin-release');
applyNodeFlags(process.argv.slice(2));
// Before anything imports src/kube: client-node's KubeConfig without its generated API (src/kube/loader.ts).
(await import('../src/kube/loader.ts')).narrowClientNode();
const { run } = await import('../src/cli/main.ts');
process.exitCode = await run(process.argv.slice(2));
