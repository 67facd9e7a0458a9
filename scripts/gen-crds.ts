// Writes crds/ from the zod schemas in src/api. Never edit crds/ by hand: run `npm run gen:crds`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generatedCrds, renderCrd } from '../src/api/crd.ts';

const dir = join(import.meta.dirname, '..', 'crds');
for (const [file, crd] of Object.entries(generatedCrds())) {
  writeFileSync(join(dir, file), renderCrd(crd));
  console.log(`wrote crds/${file}`);
}
