// A node agent in its own process, for the crash-safety tests: `activate` runs v1 then v2 (arming the
// crash point PR_TEST_CRASH_AT only for v2), `recover` restarts on the same root and reports the state.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import pino from 'pino';
import { readJournal } from '../../src/agent/journal.ts';
import { NodeEngine } from '../../src/agent/node-engine.ts';
import { isSameProcess, readProcessIdentity } from '../../src/agent/runtime/index.ts';
import { isComplete } from '../../src/agent/store.ts';
import { PluginActivationSpec } from '../../src/api/index.ts';
import { getVersion } from './agent-fixtures.ts';

const [mode, root, staging, ...rest] = process.argv.slice(2);
const engine = new NodeEngine({ root: root!, stagingRoot: staging!, logger: pino({ level: 'silent' }) });

function link(name: string): string | undefined {
  try {
    return basename(readlinkSync(join(root!, 'plugins/echo', name)));
  } catch {
    return undefined;
  }
}

if (mode === 'activate') {
  const [v1, v2] = rest.map((f) => PluginActivationSpec.parse(JSON.parse(readFileSync(f, 'utf8'))));
  await engine.recover();
  await engine.activate(v1!);
  process.stdout.write('V1_ACTIVE\n');
  if (process.env.PR_TEST_CRASH_AT) process.env.PLUGIN_RELEASE_CRASH_AT = process.env.PR_TEST_CRASH_AT;
  const status = await engine.activate(v2!);
  process.stdout.write(`V2_DONE ${status.phase}\n`);
  setInterval(() => {}, 1000); // keep serving until the test kills us
} else {
  const recovered = await engine.recover();
  const current = link('current');
  const runDir = join(root!, 'plugins/echo/run');
  let live = 0;
  try {
    for (const d of readdirSync(runDir)) {
      const id = readProcessIdentity(join(runDir, d));
      if (id && isSameProcess(id.pid, id.startTime)) live++;
    }
  } catch {
    // nothing ever ran
  }
  const journal = await readJournal(root!, 'echo');
  const served = current ? await getVersion(join(root!, 'plugins/echo/front.sock')) : undefined;
  const report = {
    actions: recovered.echo ?? [],
    current,
    currentComplete: current ? await isComplete(root!, 'echo', current) : undefined,
    activeRevision: await engine.activeRevision('echo'),
    intent: journal?.intent ?? null,
    liveProcesses: live,
    served,
  };
  await engine.close(true);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}
