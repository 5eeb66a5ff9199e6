import { describe, expect, it } from 'vitest';
import { TaskTally, taskLabel, UNKNOWN_TASK } from './task-counts.js';

const ZERO = { succeeded: 0, failed: 0, retried: 0, expired: 0, revoked: 0 };
/** Stands for `app.tasks`: the names the app registered. */
const registered = (...names: string[]) => new Map(names.map((n) => [n, {}]));

describe('TaskTally', () => {
  it('counts each final outcome and retries by queue and task; processed and failed count final outcomes only', () => {
    const tally = new TaskTally(registered('a', 'b'));
    for (const outcome of ['succeeded', 'succeeded', 'retrying', 'failed', 'expired', 'revoked'] as const) tally.count('q', 'a', outcome);
    tally.count('q', 'b', 'succeeded');
    tally.count('r', 'a', 'failed');
    // Not an end: counted nowhere.
    for (const outcome of ['duplicate', 'yielded', 'released', 'lost'] as const) tally.count('q', 'a', outcome);
    expect(tally.list()).toEqual([
      { queue: 'q', task: 'a', ...ZERO, succeeded: 2, retried: 1, failed: 1, expired: 1, revoked: 1 },
      { queue: 'q', task: 'b', ...ZERO, succeeded: 1 },
      { queue: 'r', task: 'a', ...ZERO, failed: 1 },
    ]);
    expect({ processed: tally.processed, failed: tally.failed }).toEqual({ processed: 7, failed: 4 });
  });

  it('hands out copies: a listed record does not change under a later count', () => {
    const tally = new TaskTally(registered('a', 'b'));
    tally.count('q', 'a', 'succeeded');
    const before = tally.list();
    tally.count('q', 'a', 'succeeded');
    expect(before[0]!.succeeded).toBe(1);
    expect(tally.list()[0]!.succeeded).toBe(2);
  });

  it(`counts names the app does not register under "${UNKNOWN_TASK}" of their queue, so made-up names neither grow it nor crowd out the app's own`, () => {
    const tally = new TaskTally(registered('a', 'b'));
    for (let i = 0; i < 5_000; i++) tally.count('q', `junk-${i}`, 'failed');
    tally.count('r', 'junk', 'succeeded');
    tally.count('q', 'a', 'succeeded'); // registered: its own label, after any number of junk names
    tally.count('q', 'b', 'retrying');
    expect(tally.list()).toEqual([
      { queue: 'q', task: UNKNOWN_TASK, ...ZERO, failed: 5_000 },
      { queue: 'q', task: 'a', ...ZERO, succeeded: 1 },
      { queue: 'q', task: 'b', ...ZERO, retried: 1 },
      { queue: 'r', task: UNKNOWN_TASK, ...ZERO, succeeded: 1 },
    ]);
    expect(tally.processed).toBe(5_002);
    expect([taskLabel(registered('a'), 'a'), taskLabel(registered('a'), 'zz')]).toEqual(['a', UNKNOWN_TASK]);
  });
});
