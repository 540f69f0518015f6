import { defineConfig } from 'vitest/config';

// Tests live in test/; they run against the TypeScript sources, except the
// ones that spawn the CLIs, which use dist/ (`npm test` builds first).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    // the relay churn test measures retained heap after explicit collections; enabling
    // gc with v8.setFlagsFromString at run time once deadlocked a worker inside V8's GC
    poolOptions: { forks: { execArgv: ['--expose-gc'] } },
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ['default'],
  },
});
