// Mutation testing of core's delivery rules and the worker runtime: `npm run mutation`
// (not part of CI). One file at a time takes 2–8 minutes on a shared 2-core machine:
//   npm run mutation -- --mutate packages/worker/src/fetcher.ts
// Reports: the score table on stdout, .cache/mutation/mutation.html and .json (the last run).
// Only the server-free tests run (see vitest.mutation.config.ts). A mutant whose tests hang is
// stopped by Stryker's timeout below and reported as "Timeout", separately from "Killed".
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.mutation.config.ts', related: false },
  coverageAnalysis: 'perTest',
  mutate: [
    // core: the delivery pipeline and its steps, attempts and retries
    'packages/core/src/execution.ts',
    'packages/core/src/admission.ts',
    'packages/core/src/running.ts',
    'packages/core/src/settlement.ts',
    'packages/core/src/claims.ts',
    'packages/core/src/attempt.ts',
    'packages/core/src/retry.ts',
    // core: the memory broker's queue
    'packages/core/src/memory/heap.ts',
    'packages/core/src/memory/queue.ts',
    // the worker runtime
    'packages/worker/src/lease-keeper.ts',
    'packages/worker/src/fetcher.ts',
    'packages/worker/src/executor.ts',
    'packages/worker/src/scheduler.ts',
  ],
  // Per mutant: the covering tests' own time × 1.5 + 10 s before Stryker calls it a hang.
  timeoutMS: 10_000,
  timeoutFactor: 1.5,
  concurrency: 2,
  checkers: [],
  ignorePatterns: ['.cache', 'bench', 'examples', 'docs', 'test'],
  tempDirName: '.cache/stryker-tmp',
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  clearTextReporter: { allowColor: false, logTests: false, allTestsInFilename: false, reportScoreTable: true, reportMutants: true },
  htmlReporter: { fileName: '.cache/mutation/mutation.html' },
  jsonReporter: { fileName: '.cache/mutation/mutation.json' },
  thresholds: { high: 85, low: 70, break: null },
};
