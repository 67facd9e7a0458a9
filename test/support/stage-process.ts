// Runs one stage() in this process and prints its outcome as JSON: lets a test stage as another uid.
// argv: <root> <stagingRoot> <spec JSON>
import { stage } from '../../src/agent/actions/stage.ts';
import { ActivationError } from '../../src/agent/errors.ts';
import { PluginActivationSpec } from '../../src/api/index.ts';

const [root, stagingRoot, specJson] = process.argv.slice(2);
try {
  const spec = PluginActivationSpec.parse(JSON.parse(specJson ?? '{}'));
  await stage({ root: root ?? '', stagingRoot: stagingRoot ?? '', spec, now: new Date() });
  console.log(JSON.stringify({ staged: true }));
} catch (error) {
  const reason = error instanceof ActivationError ? error.reason : 'Unexpected';
  console.log(JSON.stringify({ staged: false, reason, message: (error as Error).message }));
}
