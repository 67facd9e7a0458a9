// A node engine in its own process, its fronts held by the root's keeper, as `plugin-release agent`
// runs it (without Kubernetes): for measuring what clients see when the agent dies or is replaced.
// argv: <root> <staging> <version> <takeover 0|1> [<activation spec JSON file>]. Prints READY once it
// recovered (and activated the spec); on a hand-over it stops and exits 0.
import { readFileSync } from 'node:fs';
import pino from 'pino';
import { KeeperFronts } from '../../src/agent/front/keeper.ts';
import { NodeEngine } from '../../src/agent/node-engine.ts';
import { PluginActivationSpec } from '../../src/api/index.ts';

const [root, staging, version, takeover, specFile] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string?,
];
const logger = pino({ level: 'silent' });
const engine: NodeEngine = new NodeEngine({
  root,
  stagingRoot: staging,
  logger,
  fronts: new KeeperFronts(root, logger),
  lock: {
    version,
    takeover: takeover === '1',
    onHandover: async () => {
      await engine.close();
      setTimeout(() => process.exit(0), 50);
    },
  },
});
await engine.recover();
if (specFile) {
  const status = await engine.activate(
    PluginActivationSpec.parse(JSON.parse(readFileSync(specFile, 'utf8'))),
  );
  if (status.phase !== 'Active') throw new Error(`activation ended ${status.phase}: ${status.message}`);
}
process.stdout.write('READY\n');
setInterval(() => {}, 60_000);
