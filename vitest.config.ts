import { defineConfig } from 'vitest/config';

// Tests live in test/; they run against the TypeScript sources, except the
// ones that spawn the CLIs, which use dist/ (`npm test` builds first).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
