import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Tests run from TypeScript sources: the `@celeriac/source` export condition points each package
// at src/, for both client and SSR resolution (vitest runs tests through the SSR pipeline).
// Two groups: the suite (files in parallel), then the chaos suite's fast variants alone, one
// scenario at a time — their timing criteria (takeover bounds, throughput kept) need the machine
// to themselves, not shared with the rest of the suite.
export default defineConfig({
  resolve: { conditions: ['@celeriac/source'] },
  ssr: { resolve: { conditions: ['@celeriac/source', ...defaultServerConditions] } },
  test: {
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'suite',
          include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/chaos.test.ts'],
          fileParallelism: true,
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: { name: 'chaos', include: ['test/chaos.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
