import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

// The test set `npm run mutation` measures: the server-free tests of core and the worker (memory
// broker and store only), so a run needs no Redis or RabbitMQ and no test waits on a network.
// testTimeout is far above Stryker's own per-mutant timeout on purpose: a mutant that makes a test
// hang must be reported as a timeout by Stryker, not counted as "killed" by a vitest test timeout.
// (Spread, not vite's mergeConfig: that would append to `include` instead of replacing it.)
// Stryker runs this config from its sandbox copy, but node_modules/@celeriac/core links back to the
// original sources: without these aliases the worker's tests would import unmutated core.
const here = (path: string) => fileURLToPath(new URL(path, import.meta.url));
// One flat test set: not the suite/chaos projects of vitest.config.ts.
const { projects: _projects, ...baseTest } = base.test ?? {};
export default defineConfig({
  ...base,
  resolve: {
    ...base.resolve,
    alias: [
      { find: /^@celeriac\/core\/testing$/, replacement: here('./packages/core/src/testing/index.ts') },
      { find: /^@celeriac\/core$/, replacement: here('./packages/core/src/index.ts') },
    ],
  },
  test: {
    ...baseTest,
    include: ['packages/core/src/**/*.test.ts', 'packages/worker/src/**/*.test.ts'],
    testTimeout: 120_000,
    maxWorkers: 2,
  },
});
