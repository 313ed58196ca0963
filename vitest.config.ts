import { defineConfig } from 'vitest/config';

// Tests import the compiled package from dist/ (npm test runs tsc first): inference runs in worker
// threads, which load compiled JavaScript, so tests exercise exactly what users run.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    fileParallelism: false,
  },
});
