#!/usr/bin/env node
// kubectl plugin entry point (`kubectl pluginrelease …`): the sources in a checkout, .js in the build.
import { prepare } from './runtime.js';

prepare('kubectl-pluginrelease');
// Before anything imports src/kube: client-node's KubeConfig without its generated API (src/kube/loader.ts).
(await import('../src/kube/loader.ts')).narrowClientNode();
const { main } = await import('../src/cli/kubectl-plugin.ts');
process.exitCode = await main(process.argv.slice(2));
