// The Host runtime's client treats the spec and the node's files as hostile: the host must be on the
// node, and the token file must be one small regular file holding one token.
import { mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  configContentType,
  hostEndpoint,
  MAX_TOKEN_BYTES,
  readToken,
} from '../../../../src/agent/host/client.ts';
import { NODE_PLACEHOLDER, PluginReleaseSpec } from '../../../../src/api/index.ts';
import { aRelease } from '../../../support/builders.ts';

describe('hostEndpoint', () => {
  it.each([
    ['http://127.0.0.1:8081', { kind: 'tcp', hostname: '127.0.0.1', port: 8081 }],
    ['http://localhost:80', { kind: 'tcp', hostname: 'localhost', port: 80 }],
    ['http://[::1]:9000', { kind: 'tcp', hostname: '::1', port: 9000 }],
    ['unix:///run/host/admin.sock', { kind: 'unix', socketPath: '/run/host/admin.sock' }],
    [`unix:///run/${NODE_PLACEHOLDER}/admin.sock`, { kind: 'unix', socketPath: '/run/node-1/admin.sock' }],
  ])('accepts %s', (url, want) => {
    expect(hostEndpoint(url, 'node-1')).toMatchObject(want);
  });

  it.each([
    'http://10.0.0.1:8081',
    'https://127.0.0.1:8081',
    'http://127.0.0.1.evil.example:80',
    'http://user@127.0.0.1:80',
    'http://127.0.0.1:99999',
    'http://127.0.0.1:0',
    'unix://relative.sock',
    'unix:///run/../etc/admin.sock',
    'file:///etc/passwd',
  ])('refuses %s as HostUnreachable', (url) => {
    expect(() => hostEndpoint(url, 'node-1')).toThrow(expect.objectContaining({ reason: 'HostUnreachable' }));
  });
});

describe('readToken', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'plr-token-'));
  const file = async (name: string, content: string | Buffer) => {
    await writeFile(join(dir, name), content);
    return join(dir, name);
  };

  it('reads one token and drops its trailing newline', async () => {
    expect(await readToken(await file('ok', 'abc.DEF-123_~+/==\n'))).toBe('abc.DEF-123_~+/==');
  });

  it.each([
    [
      'a symlink',
      async () => {
        await symlink(await file('target', 'tok'), join(dir, 'link'));
        return join(dir, 'link');
      },
      /is a symlink/,
    ],
    ['a directory', async () => dir, /not a regular file/],
    ['a missing file', async () => join(dir, 'missing'), /cannot be opened \(ENOENT\)/],
    ['a file too large', async () => file('big', 'a'.repeat(MAX_TOKEN_BYTES + 1)), /bytes/],
    ['two lines (a header injection)', async () => file('two', 'tok\nX-Evil: 1'), /one bearer token/],
    [
      'a shadow-like line',
      async () => file('shadow', 'root:$6$salt$hash:19000:0:99999:7:::'),
      /one bearer token/,
    ],
    ['an empty file', async () => file('empty', ''), /one bearer token/],
  ])('refuses %s as HostTokenInvalid, never quoting it', async (_name, make, says) => {
    const path = await make();
    const error = await readToken(path).catch((e: Error & { reason: string }) => e);
    expect(error).toMatchObject({ reason: 'HostTokenInvalid', message: expect.stringMatching(says) });
    expect((error as Error).message).not.toMatch(/salt|X-Evil/);
  });
});

describe('configContentType', () => {
  it.each([
    ['/s/engine.json', 'application/json'],
    ['/s/engine.yaml', 'application/yaml'],
    ['/s/engine.yml', 'application/yaml'],
    ['/s/engine.toml', 'application/toml'],
    ['/s/engine', 'application/yaml'],
  ])('sends %s as %s', (path, type) => {
    expect(configContentType(path)).toBe(type);
  });
});

describe('spec.runtime', () => {
  const host = { url: 'http://127.0.0.1:8081' };
  const config = { path: '/staging/engine.yaml', digest: `sha256:${'a'.repeat(64)}` };
  const spec = (patch: Record<string, unknown>) => {
    const { artifact: _, ...rest } = aRelease().specInput();
    return PluginReleaseSpec.safeParse({ ...rest, ...patch });
  };
  it('defaults to Process, which needs an artifact', () => {
    expect(PluginReleaseSpec.parse(aRelease().specInput()).runtime).toBe('Process');
    expect(spec({}).error?.issues[0]).toMatchObject({
      path: ['artifact'],
      message: 'is required with runtime Process',
    });
  });
  it('takes a config-only Host release, with Workflow defaults', () => {
    const parsed = spec({ runtime: 'Host', host, config });
    expect(parsed.data?.host).toMatchObject({
      timeoutSeconds: 10,
      tryActivate: { path: '/api/workflow/try-activate' },
      activate: { path: '/api/workflow/reload' },
      health: { path: '/healthz' },
    });
  });
  it.each([
    ['no host', { runtime: 'Host', config }, ['host']],
    ['neither config nor artifact', { runtime: 'Host', host }, ['config']],
    [
      'an artifact without plugins.dir',
      { runtime: 'Host', host, artifact: aRelease().specInput().artifact },
      ['host', 'plugins'],
    ],
    [
      'Recreate',
      { runtime: 'Host', host, config, activation: { strategy: 'Recreate' } },
      ['activation', 'strategy'],
    ],
    [
      'a host that is not on the node',
      { runtime: 'Host', host: { url: 'http://10.1.2.3:80' }, config },
      ['host', 'url'],
    ],
    ['a host with Process', { host, artifact: aRelease().specInput().artifact }, ['host']],
  ])('refuses %s', (_name, patch, path) => {
    expect(spec(patch).error?.issues[0]?.path).toEqual(path);
  });
});
