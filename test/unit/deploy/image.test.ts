// Checks the container image recipe (Dockerfile, .dockerignore) and rebuilds the image's /app from it
// without a Docker engine: production dependencies only, then runs the entrypoint in it.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { expandArgs, inBuildContext, parseCopy, parseDockerfile, type Stage } from './dockerfile.ts';

const repo = join(import.meta.dirname, '../../..');
const dockerfile = parseDockerfile(readFileSync(join(repo, 'Dockerfile'), 'utf8'));
const dockerignore = readFileSync(join(repo, '.dockerignore'), 'utf8');
const pkg = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8'));
const runtime = dockerfile.stages.at(-1)!;
const all = (stage: Stage, keyword: string) => stage.instructions.filter((i) => i.keyword === keyword);

describe('the Dockerfile', () => {
  it('builds every stage on the Node 24 slim image that package.json pins', () => {
    expect(dockerfile.stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of dockerfile.stages) {
      expect(expandArgs(stage.from, dockerfile.globalArgs)).toBe('node:24-bookworm-slim');
    }
    expect(pkg.devDependencies.node).toMatch(/^\^24\./);
  });

  it('installs only production dependencies, from the lockfile', () => {
    const installs = dockerfile.stages
      .flatMap((s) => all(s, 'RUN'))
      .filter((r) => /\bnpm (ci|install|i)\b/.test(r.args));
    expect(installs.length).toBe(1);
    expect(installs[0]!.args).toMatch(/\bnpm ci\b.*--omit=dev/);
  });

  it('ships no build tools: the final stage installs nothing and removes npm, npx and corepack', () => {
    for (const run of all(runtime, 'RUN')) {
      expect(run.args).not.toMatch(/\b(npm (ci|install)|apt-get install|apk add|gcc|make|python3?)\b/);
    }
    const removal = all(runtime, 'RUN')
      .map((r) => r.args)
      .join(' ');
    for (const tool of ['/usr/local/bin/npm', '/usr/local/bin/npx', '/usr/local/bin/corepack'])
      expect(removal).toContain(tool);
  });

  it('runs as the numeric non-root user the controller Deployment asks for', () => {
    const user = all(runtime, 'USER').at(-1)?.args;
    expect(user).toBe('65532:65532');
    const deployment = parse(readFileSync(join(repo, 'deploy/controller/deployment.yaml'), 'utf8'));
    expect(deployment.spec.template.spec.securityContext.runAsUser).toBe(65532);
  });

  it('starts plugin-release through its bin, in exec form', () => {
    expect(all(runtime, 'ENTRYPOINT').at(-1)?.args).toBe('["plugin-release"]');
    expect(
      all(runtime, 'RUN').some((r) =>
        r.args.includes('/app/bin/plugin-release.js /usr/local/bin/plugin-release'),
      ),
    ).toBe(true);
    expect(pkg.bin['plugin-release']).toBe('bin/plugin-release.js');
    expect(readFileSync(join(repo, pkg.bin['plugin-release']), 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('copies from the build context only paths that exist and .dockerignore lets through', () => {
    const sources = dockerfile.stages
      .flatMap((s) => all(s, 'COPY'))
      .map((c) => parseCopy(c.args))
      .filter((c) => !c.from)
      .flatMap((c) => c.sources);
    expect(sources).toEqual(
      expect.arrayContaining(['package.json', 'package-lock.json', 'bin', 'src', 'crds']),
    );
    for (const source of sources) {
      expect(existsSync(join(repo, source)), source).toBe(true);
      expect(inBuildContext(source, dockerignore), source).toBe(true);
    }
  });

  it('keeps node_modules, tests, docs and git out of the build context', () => {
    for (const path of [
      'node_modules/zod/package.json',
      'test/unit/toolchain.test.ts',
      'docs/api.md',
      '.git/HEAD',
    ])
      expect(inBuildContext(path, dockerignore), path).toBe(false);
    expect(inBuildContext('src/api/index.ts', dockerignore)).toBe(true);
  });
});

describe('the image file system, rebuilt from the Dockerfile', () => {
  let root: string;
  let app: string;
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(app, 'bin/plugin-release.js'), ...args], {
      cwd: app,
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'production' },
      timeout: 20_000,
    });

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'plugin-release-image-'));
    app = join(root, 'app');
    // `npm ci --omit=dev`: every package the lockfile does not mark dev-only, without nested trees
    // (each nested package is its own lockfile entry).
    const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8'));
    for (const [path, entry] of Object.entries(lock.packages as Record<string, { dev?: boolean }>)) {
      if (path === '' || entry.dev || !existsSync(join(repo, path))) continue;
      const from = join(repo, path);
      cpSync(from, join(app, path), {
        recursive: true,
        filter: (p) => !relative(from, p).split('/').includes('node_modules'),
      });
    }
    // Each COPY from the build context, as the final stage lists it.
    for (const copy of all(runtime, 'COPY').map((c) => parseCopy(c.args))) {
      if (copy.from) continue;
      for (const source of copy.sources) {
        const dest =
          copy.sources.length === 1 && !copy.dest.endsWith('/') ? copy.dest : join(copy.dest, source);
        cpSync(join(repo, source), join(app, dest), { recursive: true });
      }
    }
  });

  afterAll(() => {
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('has none of the dev-only packages installed', () => {
    const lock = JSON.parse(readFileSync(join(repo, 'package-lock.json'), 'utf8'));
    const devOnly = Object.keys(pkg.devDependencies).filter((d) => lock.packages[`node_modules/${d}`]?.dev);
    expect(devOnly).toEqual(expect.arrayContaining(['vitest', 'typescript', '@biomejs/biome', 'node']));
    for (const dev of devOnly) expect(existsSync(join(app, 'node_modules', dev)), dev).toBe(false);
  });

  it('prints the package version', () => {
    const result = run('--version');
    expect(result.stderr).toBe('');
    expect(result.stdout.trim()).toBe(pkg.version);
  });

  it('computes a digest, as operators do before writing a release', () => {
    const file = join(root, 'artifact.bin');
    writeFileSync(file, 'plugin bytes');
    const result = run('digest', file);
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toContain(`sha256:${createHash('sha256').update('plugin bytes').digest('hex')}`);
  });

  it('loads every module under src/ with production dependencies alone', () => {
    const modules = readdirSync(join(app, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => join(app, 'src', f));
    expect(modules.length).toBeGreaterThan(10);
    const script = `const failed = [];
for (const m of ${JSON.stringify(modules)}) { try { await import(m); } catch (e) { failed.push(m + ': ' + e.message.split('\\n')[0]); } }
console.log(JSON.stringify(failed));`;
    const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], {
      cwd: app,
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout.trim().split('\n').at(-1)!)).toEqual([]);
  });
});
