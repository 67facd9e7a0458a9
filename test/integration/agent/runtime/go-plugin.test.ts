// go-plugin compatibility: an unmodified hashicorp/go-plugin gRPC plugin, built offline, is hostable.
//
// Needs Debian's golang-go, golang-github-hashicorp-go-plugin-dev and golang-google-grpc-dev (GOPATH mode,
// no network). Where they are absent the test is skipped and its name says why.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchPlugin, runProbes } from '../../../../src/agent/runtime/index.ts';
import { Handshake, Health, type ProbeResult } from '../../../../src/api/index.ts';

const GOCODE = '/usr/share/gocode';
const SOURCE = fileURLToPath(new URL('../../../fixtures/go-plugin/main.go', import.meta.url));

function missing(): string | undefined {
  if (spawnSync('go', ['version']).status !== 0) {
    return 'no `go` on PATH: apt-get install -y golang-go golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev';
  }
  if (!existsSync(join(GOCODE, 'src/github.com/hashicorp/go-plugin'))) {
    return `no go-plugin source in ${GOCODE}: apt-get install -y golang-github-hashicorp-go-plugin-dev golang-google-grpc-dev`;
  }
  return undefined;
}

const skip = missing();
let root: string;
let binary: string;

describe.skipIf(skip !== undefined)(`go-plugin compatibility${skip ? ` (skipped: ${skip})` : ''}`, () => {
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'pr-goplugin-'));
    const pkg = join(root, 'gopath/src/goplugin');
    await mkdir(pkg, { recursive: true });
    await copyFile(SOURCE, join(pkg, 'main.go'));
    binary = join(root, 'plugin');
    const build = spawnSync('go', ['build', '-o', binary, '.'], {
      cwd: pkg,
      env: {
        ...process.env,
        GO111MODULE: 'off',
        GOPATH: `${join(root, 'gopath')}:${GOCODE}`,
        GOCACHE: join(tmpdir(), 'plugin-release-go-cache'),
        GOFLAGS: '',
        CGO_ENABLED: '0',
      },
      encoding: 'utf8',
    });
    if (build.status !== 0) throw new Error(`go build failed:\n${build.stderr}`);
  }, 180_000);
  afterAll(async () => {
    if (root) await rm(root, { recursive: true, force: true });
  });

  it('hosts an unmodified go-plugin gRPC plugin: handshake, then grpc health on service "plugin"', async () => {
    const plugin = await launchPlugin({
      runDir: join(root, 'run'),
      entrypoint: binary,
      args: [],
      cwd: root,
      // go-plugin 1.0 ignores PLUGIN_UNIX_SOCKET_DIR and leaves its socket in $TMPDIR when killed.
      env: { TMPDIR: root },
      handshake: Handshake.parse({}),
      logger: pino({ level: 'silent' }),
    });
    const results: ProbeResult[] = [];
    try {
      expect(plugin.handshake).toMatchObject({ coreProtocol: 1, appProtocol: 1 });
      const health = Health.parse({ probes: [{ grpc: {} }, { tcpSocket: {} }] });
      await runProbes(plugin.handshake, health, { process: plugin, onResult: (r) => results.push(r) });
    } finally {
      await plugin.stop(2000);
    }
    expect(results.filter((r) => r.probe === 'grpc' && r.success)).not.toHaveLength(0);
    expect(() => process.kill(plugin.pid, 0)).toThrow();
  });
});
