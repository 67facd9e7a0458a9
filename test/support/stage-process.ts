// Runs one stage() in this process and prints its outcome as JSON: lets a test stage as another uid.
// argv: <root> <stagingRoot> <spec JSON> [<uid>]
// Started as root, it drops to <uid> (and gid) only after its modules are loaded: Node and the sources
// live in the clone, which that uid may not be able to reach (a clone inside a 0700 `mktemp -d`).
import { stage } from '../../src/agent/actions/stage.ts';
import { ActivationError } from '../../src/agent/errors.ts';
import { PluginActivationSpec } from '../../src/api/index.ts';

const [root, stagingRoot, specJson, uid] = process.argv.slice(2);
if (uid !== undefined) {
  process.setgroups?.([]);
  process.setgid?.(Number(uid));
  process.setuid?.(Number(uid));
}
try {
  const spec = PluginActivationSpec.parse(JSON.parse(specJson ?? '{}'));
  await stage({ root: root ?? '', stagingRoot: stagingRoot ?? '', spec, now: new Date() });
  console.log(JSON.stringify({ staged: true }));
} catch (error) {
  const reason = error instanceof ActivationError ? error.reason : 'Unexpected';
  console.log(JSON.stringify({ staged: false, reason, message: (error as Error).message }));
}
