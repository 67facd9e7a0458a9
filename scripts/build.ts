// The production tree the image runs (`npm run build`, the Dockerfile's build stage, the image test and
// the memory bench): src/ and bin/ compiled to JavaScript, package.json and crds/; no node_modules.
import { chmodSync, cpSync, readdirSync, rmSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join, resolve } from 'node:path';
import { build as rolldown } from 'rolldown';

const REPO = join(import.meta.dirname, '..');

/**
 * Packages the tree imports from node_modules at run time instead of carrying: client-node, whose
 * config.js the module hook of src/kube/loader.ts narrows by its path; grpc-js and proto-loader, which
 * read files beside their code; pino-pretty, a dev dependency that logger.ts loads only when present.
 */
const EXTERNAL = [/^@kubernetes\/client-node(\/|$)/, /^@grpc\//, /^pino-pretty$/];

/**
 * Replaces `outDir` with the production tree: rolldown compiles the sources reachable from bin/'s
 * launchers, module for module at their paths in the repository (code that finds bin/ or package.json
 * by a relative URL works unchanged), minified, and with what the code never uses shaken out of the
 * dependencies it bundles, which land under vendor/ (zod without its 63 unused locales, for one). That
 * costs the agent 3 MB less than plain compilation, and no Node process pays the type stripper's 18 MB
 * (docs/benchmarks.md). The caller provides node_modules for EXTERNAL (the image copies its production
 * install in). Throws if a module does not compile or resolve.
 */
export async function build(outDir: string): Promise<void> {
  const out = resolve(outDir);
  if (out === REPO) throw new Error('refusing to build into the repository itself');
  rmSync(out, { recursive: true, force: true });
  await rolldown({
    cwd: REPO,
    input: [
      'bin/plugin-release.js',
      'bin/kubectl-pluginrelease.js',
      // Not imported: loader.ts hands its URL to client-node's config.js.
      'src/kube/client-node-stand-ins.ts',
    ],
    platform: 'node',
    external: [...EXTERNAL, ...builtinModules, /^node:/],
    logLevel: 'warn',
    output: {
      dir: out,
      format: 'esm',
      preserveModules: true,
      preserveModulesRoot: REPO,
      virtualDirname: 'vendor',
      entryFileNames: (chunk) => `${chunk.name.replace(/^node_modules\//, 'vendor/')}.js`,
      minify: true,
      // Error classes name themselves after their class (src/runtime/errors.ts), and logs show them.
      keepNames: true,
    },
  });
  cpSync(join(REPO, 'package.json'), join(out, 'package.json'));
  cpSync(join(REPO, 'crds'), join(out, 'crds'), { recursive: true });
  for (const launcher of readdirSync(join(out, 'bin'))) chmodSync(join(out, 'bin', launcher), 0o755);
}

if (import.meta.main) {
  const outDir = process.argv[2] ?? join(REPO, 'dist');
  await build(outDir);
  console.log(`built ${outDir}`);
}
