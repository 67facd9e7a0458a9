import { describe, expect, it } from 'vitest';

describe('toolchain', () => {
  it('runs on Node 24, pinned by the node devDependency whatever the system Node is', () => {
    expect(process.versions.node.split('.')[0]).toBe('24');
  });
});
