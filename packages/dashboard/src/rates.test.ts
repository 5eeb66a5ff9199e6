import type { TaskCounts, WorkerInfo } from '@celeriac/core';
import { describe, expect, it } from 'vitest';
import { CountsLedger, GONE_KEEP_MS, MAX_REMEMBERED, RateSeries, type CountsDelta } from './rates.js';

const T0 = 1_000_000_000; // a whole second: bucket boundaries fall on it

function counts(queue: string, task: string, c: Partial<TaskCounts>): TaskCounts {
  return { queue, task, succeeded: 0, failed: 0, retried: 0, expired: 0, revoked: 0, ...c };
}

function worker(id: string, startedAt: number, lastSeen: number, c: TaskCounts[] | undefined): WorkerInfo {
  return { id, host: 'h', pid: 1, queues: ['q'], concurrency: 1, active: [], processed: 0, failed: 0, startedAt, lastSeen, version: '0.2.0', ...(c ? { counts: c } : {}) };
}

function delta(d: Partial<CountsDelta>): CountsDelta {
  return { queue: 'q', task: 't', succeeded: 0, failed: 0, retried: 0, expired: 0, revoked: 0, from: T0, to: T0 + 2_000, ...d };
}

describe('CountsLedger', () => {
  it('a worker that ran before the dashboard started is a baseline; later records give their deltas with the interval between them', () => {
    const ledger = new CountsLedger(T0);
    expect(ledger.observe([worker('w1', T0 - 60_000, T0 + 500, [counts('q', 't', { succeeded: 100, failed: 3 })])], T0 + 600)).toEqual([]);
    // The same record read again: nothing new.
    expect(ledger.observe([worker('w1', T0 - 60_000, T0 + 500, [counts('q', 't', { succeeded: 100, failed: 3 })])], T0 + 1_600)).toEqual([]);
    const next = ledger.observe([worker('w1', T0 - 60_000, T0 + 2_500, [counts('q', 't', { succeeded: 104, failed: 4, retried: 2 }), counts('q', 'u', { expired: 1 })])], T0 + 2_600);
    expect(next).toEqual([
      { queue: 'q', task: 't', succeeded: 4, failed: 1, retried: 2, expired: 0, revoked: 0, from: T0 + 600, to: T0 + 2_600 },
      { queue: 'q', task: 'u', succeeded: 0, failed: 0, retried: 0, expired: 1, revoked: 0, from: T0 + 600, to: T0 + 2_600 },
    ]);
  });

  it('a worker gone for longer than a minute that comes back with the same id counts only what is new, not its whole history again', () => {
    const ledger = new CountsLedger(T0);
    ledger.observe([worker('w', T0 + 1, T0 + 2_000, [counts('q', 't', { succeeded: 500 })])], T0 + 2_000);
    for (let t = T0 + 3_000; t < T0 + 30 * 60_000; t += 60_000) ledger.observe([], t); // half an hour without its record
    const back = ledger.observe([worker('w', T0 + 1, T0 + 30 * 60_000, [counts('q', 't', { succeeded: 503 })])], T0 + 30 * 60_000);
    expect(back).toEqual([{ queue: 'q', task: 't', succeeded: 3, failed: 0, retried: 0, expired: 0, revoked: 0, from: T0 + 2_000, to: T0 + 30 * 60_000 }]);
    ledger.observe([], T0 + 30 * 60_000 + 1);
    ledger.observe([], T0 + 30 * 60_000 + 1 + GONE_KEEP_MS);
    expect(ledger.size).toBe(0);
  });

  it(`remembers at most ${MAX_REMEMBERED} workers, forgetting the longest gone first, never one online now`, () => {
    const warnings: string[] = [];
    const ledger = new CountsLedger(T0, (m) => warnings.push(m));
    const many = (n: number, at: number, c: number) => Array.from({ length: n }, (_, i) => worker(`w${i}`, T0 - 1_000, at, [counts('q', 't', { succeeded: c })]));
    // More online than the cap: all are kept, and their later work is counted; one warning.
    ledger.observe(many(MAX_REMEMBERED + 5, T0 + 500, 1), T0 + 1_000);
    expect(ledger.size).toBe(MAX_REMEMBERED + 5);
    const next = ledger.observe(many(MAX_REMEMBERED + 5, T0 + 2_500, 2), T0 + 3_000);
    expect(next).toHaveLength(MAX_REMEMBERED + 5);
    ledger.observe(many(MAX_REMEMBERED + 5, T0 + 4_500, 2), T0 + 5_000);
    expect(warnings).toHaveLength(1);
    // Fewer online now: the gone ones are forgotten down to the cap, longest gone first.
    ledger.observe(many(10, T0 + 6_500, 2), T0 + 7_000);
    expect(ledger.size).toBe(MAX_REMEMBERED);
    expect(ledger.observe(many(10, T0 + 8_500, 3), T0 + 9_000)).toHaveLength(10);
  });

  it("clock skew: whether a worker is new is judged by its own uptime against the dashboard's time between reads, and its deltas land on the dashboard's clock", () => {
    const HOUR = 3_600_000;
    const ledger = new CountsLedger(T0);
    // Its clock is an hour ahead; it ran long before the dashboard: a baseline, not 900 tasks at once.
    expect(ledger.observe([worker('ahead', T0 + HOUR - 600_000, T0 + HOUR + 900, [counts('q', 't', { succeeded: 900 })])], T0 + 1_000)).toEqual([]);
    // Its clock is an hour behind; it started between two reads: counted from its start, in the dashboard's seconds.
    const late = ledger.observe([worker('behind', T0 - HOUR + 2_000, T0 - HOUR + 4_000, [counts('q', 't', { succeeded: 4 })])], T0 + 4_000);
    expect(late).toEqual([{ queue: 'q', task: 't', succeeded: 4, failed: 0, retried: 0, expired: 0, revoked: 0, from: T0 + 2_000, to: T0 + 4_000 }]);
    const next = ledger.observe([worker('behind', T0 - HOUR + 2_000, T0 - HOUR + 6_000, [counts('q', 't', { succeeded: 6 })])], T0 + 6_100);
    expect(next).toEqual([{ queue: 'q', task: 't', succeeded: 2, failed: 0, retried: 0, expired: 0, revoked: 0, from: T0 + 4_000, to: T0 + 6_000 }]);
  });

  it('a worker started after the dashboard (a restart comes back with a new id) counts from its start', () => {
    const ledger = new CountsLedger(T0);
    ledger.observe([worker('old', T0 - 10_000, T0 + 1_000, [counts('q', 't', { succeeded: 50 })])], T0 + 1_000);
    const deltas = ledger.observe([worker('new', T0 + 3_000, T0 + 5_000, [counts('q', 't', { succeeded: 7, revoked: 1 })])], T0 + 5_000);
    expect(deltas).toEqual([{ queue: 'q', task: 't', succeeded: 7, failed: 0, retried: 0, expired: 0, revoked: 1, from: T0 + 3_000, to: T0 + 5_000 }]);
  });

  it('a record without counts (an older worker) is no data; a count that shrank is no delta', () => {
    const ledger = new CountsLedger(T0);
    expect(ledger.observe([worker('w', T0 + 1, T0 + 2_000, undefined)], T0 + 2_000)).toEqual([]);
    expect(ledger.size).toBe(0);
    ledger.observe([worker('w2', T0 - 1, T0 + 2_000, [counts('q', 't', { succeeded: 9, failed: 2 })])], T0 + 2_000);
    expect(ledger.observe([worker('w2', T0 - 1, T0 + 4_000, [counts('q', 't', { succeeded: 5, failed: 3 })])], T0 + 4_000)).toEqual([
      { queue: 'q', task: 't', succeeded: 0, failed: 1, retried: 0, expired: 0, revoked: 0, from: T0 + 2_000, to: T0 + 4_000 },
    ]);
  });

  it('a worker that left is kept for GONE_KEEP_MS (a late heartbeat resumes from its last counts), then forgotten', () => {
    const ledger = new CountsLedger(T0);
    ledger.observe([worker('w', T0 + 1, T0 + 2_000, [counts('q', 't', { succeeded: 2 })])], T0 + 2_000);
    ledger.observe([], T0 + 3_000);
    expect(ledger.size).toBe(1);
    // Back within the minute: only what is new counts, not its whole history again.
    expect(ledger.observe([worker('w', T0 + 1, T0 + 8_000, [counts('q', 't', { succeeded: 3 })])], T0 + 8_000)).toEqual([
      { queue: 'q', task: 't', succeeded: 1, failed: 0, retried: 0, expired: 0, revoked: 0, from: T0 + 2_000, to: T0 + 8_000 },
    ]);
    ledger.observe([], T0 + 9_000);
    ledger.observe([], T0 + 9_000 + GONE_KEEP_MS - 1);
    expect(ledger.size).toBe(1);
    ledger.observe([], T0 + 9_000 + GONE_KEEP_MS);
    expect(ledger.size).toBe(0);
  });
});

describe('RateSeries', () => {
  it('allocates per queue as its history fills, not the whole history up front; nothing is lost when a ring grows', () => {
    const series = new RateSeries(86_400_000, T0);
    expect(series.slots('q')).toBe(0);
    series.add(delta({ succeeded: 1, from: T0, to: T0 + 1_000 }), T0 + 1_000);
    expect(series.slots('q')).toBeLessThanOrEqual(64);
    expect(series.slots(null)).toBeLessThanOrEqual(64);
    for (let t = 1; t < 300; t++) series.add(delta({ succeeded: t, from: T0 + t * 1_000, to: T0 + (t + 1) * 1_000 }), T0 + (t + 1) * 1_000);
    expect(series.slots('q')).toBeLessThanOrEqual(512);
    const got = series.series('q', T0 + 300_000, 300).processed;
    expect(got).toEqual(Array.from({ length: 300 }, (_, t) => Math.max(t, 1)));
  });


  it('two seconds 128 apart (still colliding after one doubling of 64 slots) both keep their counts', () => {
    const series = new RateSeries(86_400_000, T0);
    series.add(delta({ succeeded: 5, from: T0 + 8_000, to: T0 + 9_000 }), T0 + 9_000);
    series.add(delta({ succeeded: 7, from: T0 + 136_000, to: T0 + 137_000 }), T0 + 137_000);
    for (const queue of ['q', null]) {
      const got = series.series(queue, T0 + 137_000, 137).processed;
      expect([got[8], got[136], got.reduce((a, b) => a + b)]).toEqual([5, 7, 12]);
    }
  });

  it('spreads a delta evenly over the seconds between two records, per queue and for all queues', () => {
    const series = new RateSeries(60_000, T0);
    series.add(delta({ succeeded: 3, failed: 1, from: T0 + 1_000, to: T0 + 3_000 }), T0 + 10_000);
    series.add(delta({ queue: 'r', succeeded: 2, from: T0 + 2_000, to: T0 + 3_000 }), T0 + 10_000);
    expect(series.series('q', T0 + 4_000)).toEqual({ stepMs: 1_000, end: T0 + 4_000, processed: [0, 2, 2, 0], failed: [0, 0.5, 0.5, 0] });
    expect(series.series('r', T0 + 4_000).processed).toEqual([0, 0, 2, 0]);
    expect(series.series(null, T0 + 4_000).processed).toEqual([0, 2, 4, 0]);
    expect(series.series('none', T0 + 2_000)).toEqual({ stepMs: 1_000, end: T0 + 2_000, processed: [0, 0], failed: [0, 0] });
  });

  it('splits a second that an interval covers in part by the part it covers', () => {
    const series = new RateSeries(60_000, T0);
    series.add(delta({ succeeded: 4, from: T0 + 500, to: T0 + 2_500 }), T0 + 3_000);
    expect(series.series('q', T0 + 3_000).processed).toEqual([1, 2, 1]);
  });

  it('a retried attempt alone is not processed; a zero-length interval lands in the second it ends in', () => {
    const series = new RateSeries(60_000, T0);
    series.add(delta({ retried: 5 }), T0 + 3_000);
    series.add(delta({ succeeded: 1, from: T0 + 1_500, to: T0 + 1_500 }), T0 + 3_000);
    expect(series.series('q', T0 + 3_000).processed).toEqual([0, 1, 0]);
  });

  it('keeps historyMs: older points read 0 (their slot reused), the series starts no earlier than the dashboard', () => {
    const series = new RateSeries(60_000, T0);
    series.add(delta({ succeeded: 1, from: T0, to: T0 + 1_000 }), T0 + 1_000);
    expect(series.series('q', T0 + 60_000).processed[0]).toBe(1);
    series.add(delta({ succeeded: 7, from: T0 + 60_000, to: T0 + 61_000 }), T0 + 61_000);
    const later = series.series('q', T0 + 61_000);
    expect(later.processed).toHaveLength(60);
    expect(later.processed.at(-1)).toBe(7);
    expect(later.processed.reduce((a, b) => a + b)).toBe(7);
    // A delta over 70 s reaching back past the 60 s kept (seconds 4…62 at now 63) keeps the share of 59 s.
    series.add(delta({ succeeded: 70, from: T0 - 7_000, to: T0 + 63_000 }), T0 + 63_000);
    const kept = series.series('q', T0 + 63_000).processed;
    expect(kept[0]).toBe(0); // second 3: before the history kept
    expect(kept.reduce((a, b) => a + b)).toBe(7 + 59);
  });

  it('a worker clock ahead of the dashboard does not write into seconds not reached yet', () => {
    const series = new RateSeries(60_000, T0);
    series.add(delta({ succeeded: 2, from: T0 + 1_000, to: T0 + 9_000 }), T0 + 3_000);
    expect(series.series('q', T0 + 10_000).processed).toEqual([0, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
  });

  it('retain forgets queues no longer in use', () => {
    const series = new RateSeries(60_000, T0);
    series.add(delta({ succeeded: 1, from: T0, to: T0 + 1_000 }), T0 + 1_000);
    series.retain(new Set(['other']));
    expect(series.series('q', T0 + 1_000).processed).toEqual([0]);
    expect(series.series(null, T0 + 1_000).processed).toEqual([1]);
  });
});
