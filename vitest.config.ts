// Test runner settings: real processes and servers, so generous bounds and forked workers.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One temp dir for the run (TMPDIR), and a teardown that stops whatever a test left running.
    globalSetup: ['test/support/global-setup.ts'],
    pool: 'forks',
    // Most suites wait on real processes, sockets and timers rather than the CPU, so four files run
    // at once even on a 2-core machine (the default, one per spare core, would run them one by one).
    maxWorkers: 4,
    // Bounds against a hung test, not timers a slow one must beat: a busy 2-core machine is slow.
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
