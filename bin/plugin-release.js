#!/usr/bin/env node
// Entry point: Node 24 runs the TypeScript sources directly (type stripping), so no build is needed.
import { run } from '../src/cli/main.ts';

process.exitCode = await run(process.argv.slice(2));
