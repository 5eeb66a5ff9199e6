import { describe, expect, it } from 'vitest';
import { MAX_COUNTED_TASKS, OTHER_TASKS, TaskTally } from './task-counts.js';

const ZERO = { succeeded: 0, failed: 0, retried: 0, expired: 0, revoked: 0 };

describe('TaskTally', () => {
  it('counts each final outcome and retries by queue and task; processed and failed count final outcomes only', () => {
    const tally = new TaskTally();
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
    const tally = new TaskTally();
    tally.count('q', 'a', 'succeeded');
    const before = tally.list();
    tally.count('q', 'a', 'succeeded');
    expect(before[0]!.succeeded).toBe(1);
    expect(tally.list()[0]!.succeeded).toBe(2);
  });

  it(`counts pairs past ${MAX_COUNTED_TASKS} under "${OTHER_TASKS}" of their queue, so made-up task names cannot grow it without bound`, () => {
    const tally = new TaskTally();
    for (let i = 0; i < MAX_COUNTED_TASKS; i++) tally.count('q', `t${i}`, 'succeeded');
    tally.count('q', 'late', 'failed');
    tally.count('other-queue', 'late', 'succeeded');
    tally.count('q', 't0', 'succeeded'); // a known pair still counts as itself
    const list = tally.list();
    expect(list).toHaveLength(MAX_COUNTED_TASKS + 2);
    expect(list.find((c) => c.task === 't0')!.succeeded).toBe(2);
    expect(list.filter((c) => c.task === OTHER_TASKS)).toEqual([
      { queue: 'q', task: OTHER_TASKS, ...ZERO, failed: 1 },
      { queue: 'other-queue', task: OTHER_TASKS, ...ZERO, succeeded: 1 },
    ]);
    expect(tally.processed).toBe(MAX_COUNTED_TASKS + 3);
  });
});
