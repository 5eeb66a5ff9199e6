import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, MemoryBroker, MemoryResultBackend, type Logger, type MissedPolicy } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { ManualClock } from './clock.js';
import { Scheduler } from './scheduler.js';

// The scheduler's promises a mutant would break: each schedule keeps its own mark; start is
// idempotent and stop stops the loop; the loop wakes for the earliest tick of all schedules, and
// a failed round is logged and retried; missed ticks are reported; a store without marks still
// runs, with a warning; adding a schedule later does not turn the others' late ticks into missed.
const MIN = 60_000;
const T0 = Date.parse('2026-06-01T10:00:00Z');

interface Line {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

function setup(options: { broker?: MemoryBroker; results?: MemoryResultBackend } = {}) {
  const broker = options.broker ?? new MemoryBroker();
  const queue = uniqueQueue('beatm');
  const app = createApp({ broker, defaultQueue: queue, ...(options.results ? { results: options.results } : {}) });
  const report = app.task('reports.send', { input: z.object({ kind: z.string() }) }, ({ kind }) => kind);
  const lines: Line[] = [];
  const at = (level: string) => (fields: object | string, msg?: string) =>
    void lines.push({ level, fields: (typeof fields === 'string' ? {} : fields) as Record<string, unknown>, msg: typeof fields === 'string' ? fields : (msg ?? '') });
  const logger: Logger = { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
  const ready = async () => (await broker.stats(queue)).ready;
  /** The tick times of the tasks enqueued so far (ids end with the tick's epoch ms). */
  const ticks = async () =>
    (await broker.fetch({ queues: [queue], max: 1_000, leaseMs: MIN, waitMs: 0 })).map((d) => Number(d.message.id.split(':').pop()) - T0).sort((a, b) => a - b);
  return { app, broker, queue, report, lines, logger, ready, ticks };
}

async function until(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}

/** `clock`, recording how long the scheduler asks it to sleep each time. */
function recording(clock: ManualClock) {
  const sleeps: number[] = [];
  return Object.assign(clock, {
    sleeps,
    sleep: ((sleep) => (ms: number, signal: AbortSignal) => (sleeps.push(ms), sleep(ms, signal)))(clock.sleep),
  });
}

const settle = () => new Promise((r) => setTimeout(r, 30));

/**
 * An app sharing a broker with another whose scheduler (its clock ahead) already ran a 15-minute
 * schedule up to T0 + 60 min: the marks say so, this app has not run anything.
 */
async function afterASchedulerAhead() {
  const broker = new MemoryBroker();
  const ahead = setup({ broker });
  ahead.app.schedule('quarter', { every: '15m', task: ahead.report, payload: { kind: 'q' } });
  const fast = new Scheduler(ahead.app, { clock: new ManualClock(T0) });
  await fast.runDue(T0);
  await fast.runDue(T0 + 60 * MIN);
  const behind = setup({ broker });
  behind.app.schedule('quarter', { every: '15m', task: behind.report, payload: { kind: 'q' } });
  return behind;
}

describe('Scheduler (mutation-tested guarantees)', () => {
  it("keeps each schedule's last run apart: a restarted scheduler knows each one's own", async () => {
    const broker = new MemoryBroker();
    const before = setup({ broker });
    before.app.schedule('hourly', { every: '1h', task: before.report, payload: { kind: 'h' } });
    before.app.schedule('quarter', { every: '15m', task: before.report, payload: { kind: 'q' } });
    const first = new Scheduler(before.app, { clock: new ManualClock(T0) });
    await first.runDue(T0);
    await first.runDue(T0 + 60 * MIN);
    await first.runDue(T0 + 90 * MIN);
    const after = setup({ broker });
    after.app.schedule('hourly', { every: '1h', task: after.report, payload: { kind: 'h' } });
    after.app.schedule('quarter', { every: '15m', task: after.report, payload: { kind: 'q' } });
    const again = new Scheduler(after.app, { clock: new ManualClock(T0 + 90 * MIN) });
    expect(await again.runDue(T0 + 90 * MIN)).toBe(0);
    expect(again.describe().map((s) => [s.name, s.lastRun])).toEqual([
      ['hourly', Date.parse('2026-06-01T11:00:00Z')],
      ['quarter', Date.parse('2026-06-01T11:30:00Z')],
    ]);
  });

  it('never names as next run a tick that already ran (a mark from a scheduler whose clock is ahead)', async () => {
    const behind = await afterASchedulerAhead();
    const slow = new Scheduler(behind.app, { clock: new ManualClock(T0 + 40 * MIN) });
    expect(await slow.runDue(T0 + 40 * MIN)).toBe(0);
    expect(slow.describe(T0 + 40 * MIN)[0]).toMatchObject({ lastRun: T0 + 60 * MIN, nextRun: T0 + 75 * MIN });
    // And a clock past the last run names the next tick after now.
    expect(slow.describe(T0 + 100 * MIN)[0]).toMatchObject({ nextRun: T0 + 105 * MIN });
  });

  it('starts once, saying which schedules it runs, and stops its loop', async () => {
    const { app, report, logger, lines, ready } = setup();
    app.schedule('minutely', { every: '1m', task: report, payload: { kind: 'm' } });
    app.schedule('quarter', { every: '15m', task: report, payload: { kind: 'q' } });
    const clock = new ManualClock(T0);
    const scheduler = new Scheduler(app, { clock, logger, single: true });
    await scheduler.start();
    await scheduler.start();
    expect(lines.filter((l) => l.level === 'info')).toEqual([{ level: 'info', fields: { schedules: ['minutely', 'quarter'] }, msg: 'scheduler started' }]);
    clock.advanceTo(T0 + MIN);
    await until(async () => (await ready()) === 1);
    await scheduler.stop();
    clock.advanceTo(T0 + 30 * MIN);
    await settle();
    expect(await ready()).toBe(1);
  });

  it('sleeps until the earliest next tick of all its schedules, however long maxSleepMs is', async () => {
    const { app, report, ready } = setup();
    app.schedule('quarter', { every: '15m', task: report, payload: { kind: 'q' } });
    app.schedule('minutely', { every: '1m', task: report, payload: { kind: 'm' } });
    const clock = recording(new ManualClock(T0 + 1_000));
    const scheduler = new Scheduler(app, { clock, maxSleepMs: 24 * 60 * MIN, single: true });
    await scheduler.start();
    await until(async () => clock.sleeps.length > 0);
    expect(clock.sleeps).toEqual([MIN - 1_000]);
    clock.advanceTo(T0 + MIN);
    await until(async () => (await ready()) === 1);
    clock.advanceTo(T0 + 2 * MIN);
    await until(async () => (await ready()) === 2);
    await scheduler.stop();
  });

  it('does not wake for a tick another scheduler (its clock ahead) already ran', async () => {
    const behind = await afterASchedulerAhead();
    const clock = recording(new ManualClock(T0 + 40 * MIN));
    const slow = new Scheduler(behind.app, { clock, maxSleepMs: 24 * 60 * MIN, single: true });
    await slow.start();
    await slow.stop();
    expect(clock.sleeps).toEqual([35 * MIN]); // until 11:15, the tick after the 11:00 that ran
  });

  it('logs a failed round and tries again a second later', async () => {
    const broker = new MemoryBroker();
    const { app, report, logger, lines, ready } = setup({ broker });
    app.schedule('minutely', { every: '1m', task: report, payload: { kind: 'm' } });
    // The broker refuses one publish (a dropped connection), then recovers.
    const publish = broker.publish.bind(broker);
    let failures = 1;
    broker.publish = (messages, options) => (failures-- > 0 ? Promise.reject(new Error('connection reset')) : publish(messages, options));
    const clock = new ManualClock(T0 + 1_000);
    const scheduler = new Scheduler(app, { clock, logger, single: true });
    await scheduler.start();
    clock.advanceTo(T0 + MIN);
    await until(async () => lines.some((l) => l.level === 'error'));
    expect(lines.filter((l) => l.level === 'error')).toEqual([{ level: 'error', fields: { err: expect.stringContaining('connection reset') }, msg: 'scheduler tick failed; retrying in 1 s' }]);
    expect(await ready()).toBe(0);
    clock.advanceTo(T0 + MIN + 1_000);
    await until(async () => (await ready()) === 1);
    await scheduler.stop();
  });

  describe('missed ticks', () => {
    /** A scheduler ran to 10:00 and came back at 11:00:30: 10:15, 10:30, 10:45 were missed, 11:00 is 30 s late. */
    async function comeBack(missed: MissedPolicy) {
      const broker = new MemoryBroker();
      const before = setup({ broker });
      before.app.schedule('quarter', { every: '15m', task: before.report, payload: { kind: 'q' }, missed });
      const first = new Scheduler(before.app, { clock: new ManualClock(T0) });
      await first.runDue(T0 - 1_000);
      expect(await first.runDue(T0)).toBe(1);
      const after = setup({ broker });
      after.app.schedule('quarter', { every: '15m', task: after.report, payload: { kind: 'q' }, missed });
      const back = T0 + 60 * MIN + 30_000;
      const created = await new Scheduler(after.app, { clock: new ManualClock(back), logger: after.logger }).runDue(back);
      return { created, info: after.lines.filter((l) => l.level === 'info') };
    }

    it('are reported with how many ran under the policy', async () => {
      expect(await comeBack('run-once')).toEqual({
        created: 1,
        info: [{ level: 'info', fields: { schedule: 'quarter', missed: 3, run: 0, policy: 'run-once' }, msg: 'ticks were missed while no scheduler ran' }],
      });
      expect((await comeBack({ catchUp: 2 })).info.map((l) => l.fields)).toEqual([{ schedule: 'quarter', missed: 3, run: 1, policy: { catchUp: 2 } }]);
    });

    it('are not reported when none were missed', async () => {
      const { app, report, logger, lines } = setup();
      app.schedule('quarter', { every: '15m', task: report, payload: { kind: 'q' } });
      const scheduler = new Scheduler(app, { clock: new ManualClock(T0), logger });
      await scheduler.runDue(T0);
      expect(await scheduler.runDue(T0 + 15 * MIN)).toBe(1);
      expect(lines.filter((l) => l.level === 'info')).toEqual([]);
    });

    it("are not made of another schedule's late ticks when a schedule is added while running", async () => {
      const { app, report, ticks } = setup();
      app.schedule('tens', { every: '10s', task: report, payload: { kind: 't' }, missed: 'skip' });
      const scheduler = new Scheduler(app, { clock: new ManualClock(T0) });
      await scheduler.runDue(T0);
      app.schedule('later', { every: '1h', task: report, payload: { kind: 'l' } });
      // The loop was held up 25 s: both ticks of `tens` came while it ran, so both are on time.
      expect(await scheduler.runDue(T0 + 25_000)).toBe(2);
      expect(await ticks()).toEqual([10_000, 20_000]);
    });
  });

  describe('a result store that keeps no marks', () => {
    it('still enqueues each tick, and warns that a restart skips missed ticks', async () => {
      const results = new MemoryResultBackend();
      Object.defineProperty(results, 'marks', { value: undefined });
      const { app, report, logger, lines } = setup({ results });
      app.schedule('quarter', { every: '15m', task: report, payload: { kind: 'q' } });
      const scheduler = new Scheduler(app, { clock: new ManualClock(T0), logger, single: true });
      await scheduler.runDue(T0);
      expect(await scheduler.runDue(T0 + 15 * MIN)).toBe(1);
      expect(lines.filter((l) => l.level === 'warn').map((l) => l.msg)).toEqual(['the result store keeps no marks: after a restart, missed ticks are skipped whatever the policy']);
    });
  });

  describe('the warning about a store not shared across processes', () => {
    it('names the schedules it concerns', async () => {
      const { app, report, logger, lines } = setup();
      app.schedule('five', { cron: '*/5 * * * *', task: report, payload: { kind: 'x' } });
      const scheduler = new Scheduler(app, { clock: new ManualClock(T0), logger });
      await scheduler.start();
      await scheduler.stop();
      expect(lines.filter((l) => l.level === 'warn').map((l) => l.fields)).toEqual([{ schedules: ['five'] }]);
    });

    it('is not given when there are no schedules', async () => {
      const { app, logger, lines } = setup();
      const scheduler = new Scheduler(app, { clock: new ManualClock(T0), logger });
      await scheduler.start();
      await scheduler.stop();
      expect(lines.filter((l) => l.level === 'warn')).toEqual([]);
    });
  });
});
