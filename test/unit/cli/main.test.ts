// The command tree's dev commands: loaded from dev/cli in a source checkout, refused with exit 2 and a
// pointer to the checkout where dev/ is absent, as in the production image.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { run } from '../../../src/cli/main.ts';

afterEach(() => {
  vi.restoreAllMocks();
});

describe.each(['demo', 'devcluster'])('plugin-release %s', (name) => {
  it('loads the command from dev/cli in a source checkout', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await run([name, '--help'])).toBe(0);
    expect(log.mock.calls.join('\n')).toMatch(new RegExp(`^Usage: plugin-release ${name}\\b`, 'm'));
  });

  it('exits 2 saying it runs from a source checkout where dev/ is absent', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => {});
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    expect(await run([name, '--help'], new URL('file:///nonexistent/dev/cli/'))).toBe(2);
    expect(log).not.toHaveBeenCalled();
    expect(error).toHaveBeenCalledOnce();
    const message = String(error.mock.calls[0]?.[0]);
    expect(message).toContain(`plugin-release ${name}: this command runs from a source checkout`);
    expect(message).toContain(`/nonexistent/dev/cli/${name}.ts is absent`);
    expect(message).toContain('npm run demo');
  });
});
