import { defaultServerConditions } from 'vite';
import { defineConfig } from 'vitest/config';

// Tests run from TypeScript sources: the `@celeriac/source` export condition points each package
// at src/, for both client and SSR resolution (vitest runs tests through the SSR pipeline).
export default defineConfig({
  resolve: { conditions: ['@celeriac/source'] },
  ssr: { resolve: { conditions: ['@celeriac/source', ...defaultServerConditions] } },
  test: {
    include: ['packages/*/src/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 60_000,
    pool: 'forks',
    fileParallelism: true,
    maxWorkers: 2,
    reporters: ['default'],
  },
});
