import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

// Attack tests whose defence has not landed on main yet: outside the suite (they fail on
// main), run with `npx vitest run --config test/adversarial/pending/vitest.config.ts`.
// When a defence lands, its file moves to test/adversarial/<name>.test.ts.
export default defineConfig({
  test: {
    root: fileURLToPath(new URL('../../..', import.meta.url)),
    include: ['test/adversarial/pending/*.pending.ts'],
    pool: 'forks',
    testTimeout: 90_000,
    hookTimeout: 60_000,
  },
});
