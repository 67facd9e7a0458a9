// Test runner settings: real processes and servers, so generous timeouts and forked workers.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // Most suites wait on real processes, sockets and timers rather than the CPU, so four files run
    // at once even on a 2-core machine (the default, one per spare core, would run them one by one).
    maxWorkers: 4,
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
