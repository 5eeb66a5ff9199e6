import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp, MemoryBroker, type App, type MissedPolicy } from '@celeriac/core';
import { uniqueQueue } from '@celeriac/core/testing';
import { ManualClock } from './clock.js';
import { Scheduler } from './scheduler.js';

const MIN = 60_000;
const DAY = 86_400_000;

function setup(broker = new MemoryBroker(), queue = uniqueQueue('beat')) {
  const app = createApp({ broker, defaultQueue: queue });
  const report = app.task('reports.send', { input: z.object({ kind: z.string() }) }, ({ kind }) => kind);
  return { app, broker, queue, report };
}

async function ready(app: App, queue: string): Promise<number> {
  return (await (await app.connection()).broker.stats(queue)).ready;
}

/** Calls `runDue` at every tick of the schedule in (from, to] — what a punctual scheduler does. */
async function stepThrough(scheduler: Scheduler, clock: ManualClock, app: App, name: string, to: number): Promise<number> {
  const schedule = app.schedules.get(name)!;
  let created = await scheduler.runDue(clock.now()); // the scheduler comes up before the first tick
  for (let t = schedule.next(clock.now()); t <= to; t = schedule.next(t)) {
    clock.advanceTo(t);
    created += await scheduler.runDue(t);
  }
  return created;
}

describe('Scheduler', () => {
  it('enqueues exactly one task per tick over a month of */5', async () => {
    const { app, report, queue } = setup();
    app.schedule('every-five', { cron: '*/5 * * * *', task: report, payload: { kind: 'five' } });
    const start = Date.parse('2026-02-01T00:00:00Z');
    const clock = new ManualClock(start);
    const scheduler = new Scheduler(app, { clock });
    const created = await stepThrough(scheduler, clock, app, 'every-five', start + 30 * DAY);
    expect(created).toBe(30 * 24 * 12);
    expect(await ready(app, queue)).toBe(30 * 24 * 12);
  });

  it('takes 6-field expressions (seconds first)', async () => {
    const { app, report, queue } = setup();
    app.schedule('ten-seconds', { cron: '*/10 * * * * *', task: report, payload: { kind: 's' } });
    const start = Date.parse('2026-02-01T00:00:00Z');
    const clock = new ManualClock(start);
    expect(await stepThrough(new Scheduler(app, { clock }), clock, app, 'ten-seconds', start + 5 * MIN)).toBe(30);
    expect(await ready(app, queue)).toBe(30);
  });

  it('runs its own loop on the injected clock, sleeping until each tick', async () => {
    const { app, report, queue } = setup();
    app.schedule('quarterly', { every: '15m', task: report, payload: { kind: 'q' } });
    const clock = new ManualClock(Date.parse('2026-05-01T10:00:00Z'));
    const scheduler = new Scheduler(app, { clock });
    await scheduler.start();
    for (let i = 1; i <= 4; i++) {
      clock.advanceTo(Date.parse('2026-05-01T10:00:00Z') + i * 15 * MIN);
      await until(async () => (await ready(app, queue)) === i);
    }
    await scheduler.stop();
    expect(scheduler.describe()[0]).toMatchObject({ name: 'quarterly', expression: '15m', tz: 'UTC', lastRun: Date.parse('2026-05-01T11:00:00Z'), nextRun: Date.parse('2026-05-01T11:15:00Z') });
  });

  it('gives three instances sharing a broker one task per tick, with no leader', async () => {
    const broker = new MemoryBroker();
    const queue = uniqueQueue('beat');
    const instances = [0, 1, 2].map(() => {
      const s = setup(broker, queue);
      s.app.schedule('shared', { cron: '*/5 * * * *', task: s.report, payload: { kind: 'shared' } });
      return s;
    });
    const start = Date.parse('2026-03-01T00:00:00Z');
    const clocks = instances.map(() => new ManualClock(start));
    const schedulers = instances.map((s, i) => new Scheduler(s.app, { clock: clocks[i]! }));
    const schedule = instances[0]!.app.schedules.get('shared')!;
    let created = 0;
    for (const s of schedulers) created += await s.runDue(start);
    for (let t = schedule.next(start), n = 0; t <= start + DAY; t = schedule.next(t), n++) {
      // Each tick, the instances arrive in a different order, some a few seconds late.
      for (const i of [n % 3, (n + 1) % 3, (n + 2) % 3]) {
        clocks[i]!.advanceTo(t + i * 1_000);
        created += await schedulers[i]!.runDue(t + i * 1_000);
      }
    }
    expect(created).toBe(288);
    expect(await ready(instances[0]!.app, queue)).toBe(288);
  });

  describe('daylight saving time, as cron-parser defines it', () => {
    async function ticks(cron: string, tz: string, from: string, to: string): Promise<string[]> {
      const { app, report, queue, broker } = setup();
      app.schedule('dst', { cron, tz, task: report, payload: { kind: 'dst' } });
      const clock = new ManualClock(Date.parse(from));
      await stepThrough(new Scheduler(app, { clock }), clock, app, 'dst', Date.parse(to));
      const deliveries = await broker.fetch({ queues: [queue], max: 1_000, leaseMs: 60_000, waitMs: 0 });
      return deliveries.map((d) => new Date(Number(d.message.id.split(':').pop())).toISOString()).sort();
    }

    it('Europe/Paris spring: 02:30 falls in the gap on 29 March and runs at 03:30 CEST, once', async () => {
      expect(await ticks('30 2 * * *', 'Europe/Paris', '2026-03-27T00:00:00Z', '2026-03-30T12:00:00Z')).toEqual([
        '2026-03-27T01:30:00.000Z',
        '2026-03-28T01:30:00.000Z',
        '2026-03-29T01:30:00.000Z',
        '2026-03-30T00:30:00.000Z',
      ]);
    });

    it('Europe/Paris autumn: 02:30 happens twice on 25 October and runs once', async () => {
      expect(await ticks('30 2 * * *', 'Europe/Paris', '2026-10-24T00:00:00Z', '2026-10-26T12:00:00Z')).toEqual([
        '2026-10-24T00:30:00.000Z',
        '2026-10-25T00:30:00.000Z',
        '2026-10-26T01:30:00.000Z',
      ]);
    });

    it('America/New_York: an hourly job runs 23 times on the spring day and 25 on the autumn day', async () => {
      // 8 March 2026 local midnight to midnight is 23 real hours; 1 November is 25.
      expect(await ticks('0 * * * *', 'America/New_York', '2026-03-08T04:59:59Z', '2026-03-09T03:59:59Z')).toHaveLength(23);
      expect(await ticks('0 * * * *', 'America/New_York', '2026-11-01T03:59:59Z', '2026-11-02T04:59:59Z')).toHaveLength(25);
    });
  });

  describe('restart after downtime', () => {
    async function restart(missed: MissedPolicy) {
      const broker = new MemoryBroker();
      const queue = uniqueQueue('beat');
      const start = Date.parse('2026-06-01T00:00:00Z');
      const before = setup(broker, queue);
      before.app.schedule('five', { cron: '*/5 * * * *', task: before.report, payload: { kind: 'x' }, missed });
      const clock = new ManualClock(start);
      const first = await stepThrough(new Scheduler(before.app, { clock }), clock, before.app, 'five', start + 60 * MIN);
      expect(first).toBe(12);
      // Down for three hours (36 ticks missed), back up between two ticks.
      const after = setup(broker, queue);
      after.app.schedule('five', { cron: '*/5 * * * *', task: after.report, payload: { kind: 'x' }, missed });
      const back = start + 60 * MIN + 3 * 60 * MIN + 150_000;
      const created = await new Scheduler(after.app, { clock: new ManualClock(back) }).runDue(back);
      const ids = (await broker.fetch({ queues: [queue], max: 1_000, leaseMs: 60_000, waitMs: 0 })).map((d) => d.message.id);
      return { created, total: ids.length, newest: ids.map((id) => Number(id.split(':').pop())).sort().slice(-1)[0]!, back };
    }

    it('skip: back-fills nothing', async () => {
      expect(await restart('skip')).toMatchObject({ created: 0, total: 12 });
    });

    it('run-once: runs the latest missed tick once', async () => {
      const r = await restart('run-once');
      expect(r).toMatchObject({ created: 1, total: 13 });
      expect(r.newest).toBe(r.back - 150_000);
    });

    it('catch up n: runs the newest n missed ticks', async () => {
      expect(await restart({ catchUp: 5 })).toMatchObject({ created: 5, total: 17 });
    });

    it('an immediate restart repeats nothing', async () => {
      const { app, report, queue, broker } = setup();
      app.schedule('five', { cron: '*/5 * * * *', task: report, payload: { kind: 'x' }, missed: { catchUp: 10 } });
      const start = Date.parse('2026-06-01T00:00:00Z');
      const clock = new ManualClock(start);
      await stepThrough(new Scheduler(app, { clock }), clock, app, 'five', start + 30 * MIN);
      const again = setup(broker, queue);
      again.app.schedule('five', { cron: '*/5 * * * *', task: again.report, payload: { kind: 'x' }, missed: { catchUp: 10 } });
      expect(await new Scheduler(again.app, { clock }).runDue(start + 30 * MIN)).toBe(0);
      expect(await ready(app, queue)).toBe(6);
    });
  });

  // Defect 11 (issue 8): an `every: '1s'` schedule restarted after 30 s ran 30 ticks at once, whatever
  // `missed` said, because every tick younger than the 60 s grace counted as on time.
  describe('restart within the grace period', () => {
    async function quickRestart(missed: MissedPolicy) {
      const broker = new MemoryBroker();
      const queue = uniqueQueue('beat');
      const start = Date.parse('2026-06-01T00:00:00Z');
      const before = setup(broker, queue);
      before.app.schedule('tick', { every: '1s', task: before.report, payload: { kind: 'x' }, missed });
      const clock = new ManualClock(start);
      expect(await stepThrough(new Scheduler(before.app, { clock }), clock, before.app, 'tick', start + 10_000)).toBe(10);
      // Down for 30 s, back up 0.5 s after a tick: 30 ticks passed while no scheduler ran.
      const after = setup(broker, queue);
      after.app.schedule('tick', { every: '1s', task: after.report, payload: { kind: 'x' }, missed });
      const back = start + 10_000 + 30_500;
      const later = new ManualClock(back);
      const scheduler = new Scheduler(after.app, { clock: later });
      const created = await scheduler.runDue(back);
      const ids = (await broker.fetch({ queues: [queue], max: 1_000, leaseMs: 60_000, waitMs: 0 })).map((d) => Number(d.message.id.split(':').pop()));
      const ranAfterRestart = ids.filter((t) => t > start + 10_000).sort();
      // Running on: the next ticks are on time again, one each.
      later.advanceTo(back + 500);
      const next = await scheduler.runDue(back + 500);
      return { created, ranAfterRestart: ranAfterRestart.map((t) => t - back), next };
    }

    it('skip: runs only the current tick (0.5 s late), back-filling none', async () => {
      expect(await quickRestart('skip')).toEqual({ created: 1, ranAfterRestart: [-500], next: 1 });
    });

    it('run-once: one run for the whole gap', async () => {
      expect(await quickRestart('run-once')).toEqual({ created: 1, ranAfterRestart: [-500], next: 1 });
    });

    it('catch up n: at most n runs, the newest ticks', async () => {
      expect(await quickRestart({ catchUp: 5 })).toEqual({ created: 5, ranAfterRestart: [-4_500, -3_500, -2_500, -1_500, -500], next: 1 });
    });

    it('the grace line: the current tick runs up to graceMs late, not a millisecond more', async () => {
      for (const [late, expected] of [[60_000, 1], [60_001, 0]] as const) {
        const { app, report } = setup();
        app.schedule('hourly', { cron: '0 * * * *', task: report, payload: { kind: 'x' } });
        const start = Date.parse('2026-05-31T23:59:30Z');
        const first = new Scheduler(app, { clock: new ManualClock(start) });
        expect(await first.runDue(start)).toBe(0);
        expect(await first.runDue(start + 30_000)).toBe(1); // 00:00, then down
        // Restarted (new instance, marks from the store) `late` ms after 01:00.
        const back = Date.parse('2026-06-01T01:00:00Z') + late;
        expect(await new Scheduler(app, { clock: new ManualClock(back) }).runDue(back)).toBe(expected);
      }
    });

    it('a ten-year downtime costs a bounded look-back: catch up 3 runs the newest 3 ticks', async () => {
      const { app, report, queue, broker } = setup();
      app.schedule('tick', { every: '1s', task: report, payload: { kind: 'x' }, missed: { catchUp: 3 } });
      const start = Date.parse('2016-06-01T00:00:00Z');
      const first = new Scheduler(app, { clock: new ManualClock(start) });
      expect(await first.runDue(start)).toBe(0);
      expect(await first.runDue(start + 1_000)).toBe(1);
      const back = start + 10 * 365 * DAY + 250;
      expect(await new Scheduler(app, { clock: new ManualClock(back) }).runDue(back)).toBe(3);
      const ticks = (await broker.fetch({ queues: [queue], max: 10, leaseMs: 60_000, waitMs: 0 })).map((d) => Number(d.message.id.split(':').pop()) - back);
      expect(ticks.sort((a, b) => a - b)).toEqual([-10 * 365 * DAY + 750, -2_250, -1_250, -250]);
    });

    it('a running scheduler whose loop was held up a few seconds still runs each late tick', async () => {
      const { app, report, queue } = setup();
      app.schedule('tick', { every: '1s', task: report, payload: { kind: 'x' } });
      const start = Date.parse('2026-06-01T00:00:00Z');
      const scheduler = new Scheduler(app, { clock: new ManualClock(start) });
      expect(await scheduler.runDue(start)).toBe(0);
      expect(await scheduler.runDue(start + 3_200)).toBe(3);
      expect(await ready(app, queue)).toBe(3);
    });
  });

  describe('a result store not shared across processes', () => {
    function capture() {
      const warnings: string[] = [];
      const note = (a: object | string, b?: string) => void (typeof a === 'string' ? a : (b ?? ''));
      return { warnings, logger: { debug: note, info: note, error: note, warn: (a: object | string, b?: string) => void warnings.push(typeof a === 'string' ? a : (b ?? '')) } };
    }

    it('warns at start that several schedulers would each enqueue every tick, naming the fix', async () => {
      const { app, report } = setup();
      app.schedule('five', { cron: '*/5 * * * *', task: report, payload: { kind: 'x' } });
      const { warnings, logger } = capture();
      const scheduler = new Scheduler(app, { clock: new ManualClock(Date.parse('2026-06-01T00:00:00Z')), logger });
      await scheduler.start();
      await scheduler.stop();
      expect(warnings.filter((w) => /not shared/.test(w))).toEqual([expect.stringMatching(/schedulers in other processes would each enqueue every tick.*results: 'redis:\/\/…'.*single: true/)]);
    });

    it('says nothing when told it is the only scheduler, or when the store is shared', async () => {
      for (const [single, shared] of [[true, false], [false, true]] as const) {
        const broker = new MemoryBroker();
        if (shared) Object.assign(broker.results, { capabilities: { push: true, shared: true } });
        const { app, report } = setup(broker);
        app.schedule('five', { cron: '*/5 * * * *', task: report, payload: { kind: 'x' } });
        const { warnings, logger } = capture();
        const scheduler = new Scheduler(app, { clock: new ManualClock(Date.parse('2026-06-01T00:00:00Z')), logger, single });
        await scheduler.start();
        await scheduler.stop();
        expect(warnings.filter((w) => /not shared/.test(w))).toEqual([]);
      }
    });
  });

  it('refuses bad schedules at app.schedule, naming the schedule and the problem', () => {
    const { app, report } = setup();
    expect(() => app.schedule('a', { cron: '61 * * * *', task: report, payload: { kind: 'x' } })).toThrow(/schedule "a": invalid cron expression "61 \* \* \* \*": .*59/);
    expect(() => app.schedule('b', { cron: '0 3 * * *', tz: 'Mars/Olympus', task: report, payload: { kind: 'x' } })).toThrow(/schedule "b": unknown time zone "Mars\/Olympus"/);
    expect(() => app.schedule('c', { cron: '0 3 *', task: report, payload: { kind: 'x' } })).toThrow(/schedule "c": invalid cron expression .*5 fields/);
    expect(() => app.schedule('d', { every: 'often', task: report, payload: { kind: 'x' } })).toThrow(/schedule "d": every must look like/);
    expect(() => app.schedule('e', { cron: '* * * * *', every: '1m', task: report, payload: { kind: 'x' } })).toThrow(/exactly one of/);
    expect(() => app.schedule('f', { cron: '* * * * *', task: report, payload: { kind: 1 } as never })).toThrow(/schedule "f": invalid payload for task "reports.send": kind: /);
    expect(() => app.schedule('g', { cron: '* * * * *', task: report, payload: { kind: 'x' }, missed: { catchUp: 0 } })).toThrow(/missed must be/);
    expect(() => app.schedule('h', { cron: '0 0 3 * * *', task: report, payload: { kind: 'x' } })).not.toThrow();
  });
});

async function until(check: () => Promise<boolean>, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 2));
  }
}
