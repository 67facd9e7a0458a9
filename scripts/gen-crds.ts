// Writes crds/ (and its copy in deploy/crds/, which kustomize needs inside its root) and
// docs/api-reference.md from the zod schemas in src/api. Never edit them by hand.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedCrds, renderCrd } from '../src/api/crd.ts';
import { renderReference } from '../src/api/reference.ts';

const root = join(import.meta.dirname, '..');
for (const [file, crd] of Object.entries(generatedCrds())) {
  for (const dir of ['crds', 'deploy/crds']) {
    writeFileSync(join(root, dir, file), renderCrd(crd));
    console.log(`wrote ${dir}/${file}`);
  }
}
writeFileSync(join(root, 'docs', 'api-reference.md'), renderReference());
console.log('wrote docs/api-reference.md');
