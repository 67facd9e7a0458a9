// A stand-in agent for the outlive test: launches one plugin, prints its record, then waits to be killed.
import pino from 'pino';
import { launchPlugin } from '../../../../src/agent/runtime/index.ts';
import { Handshake } from '../../../../src/api/index.ts';

const [runDir, entrypoint, cwd] = process.argv.slice(2) as [string, string, string];
const plugin = await launchPlugin({
  runDir,
  entrypoint,
  args: [],
  cwd,
  env: {},
  handshake: Handshake.parse({}),
  logger: pino({ level: 'silent' }),
});
process.stdout.write(`${JSON.stringify(plugin.record())}\n`);
setInterval(() => {}, 60_000);
