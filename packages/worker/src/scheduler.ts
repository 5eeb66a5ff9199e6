import type { App, Logger, MarkStore, Schedule } from '@celeriac/core';
import { systemClock, type Clock } from './clock.js';

export interface SchedulerOptions {
  clock?: Clock;
  logger?: Logger;
  /** A tick this late or less is on time; older ones count as missed (default 60 s). */
  graceMs?: number;
  /** Longest single sleep, so a jump of the system clock is noticed (default 60 s). */
  maxSleepMs?: number;
}

export interface ScheduleInfo {
  name: string;
  task: string;
  expression: string;
  tz: string;
  missed: Schedule['missed'];
  nextRun: number;
  lastRun: number | null;
}

const markName = (schedule: Schedule) => `beat:${schedule.name}`;

/**
 * The periodic-task scheduler (beat). Safe to run in any number of processes at once.
 * 1. Computes every schedule's ticks (cron-parser, with time zones) and sleeps until the earliest.
 * 2. Enqueues each tick with an id and idempotency key derived from the schedule name and tick time,
 *    so however many schedulers run, the broker keeps one task per tick — no leader election.
 * 3. Keeps each schedule's last tick as a mark in the result store, so a restart neither repeats
 *    ticks nor back-fills more than the schedule's `missed` policy allows.
 */
export class Scheduler {
  readonly #app: App;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #graceMs: number;
  readonly #maxSleepMs: number;
  readonly #last = new Map<string, number>();
  readonly #abort = new AbortController();
  #marks: MarkStore | undefined;
  #loop: Promise<void> | undefined;

  constructor(app: App, options: SchedulerOptions = {}) {
    this.#app = app;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? app.logger;
    this.#graceMs = options.graceMs ?? 60_000;
    this.#maxSleepMs = options.maxSleepMs ?? 60_000;
  }

  /** Loads the last-run marks and starts the loop. */
  async start(): Promise<void> {
    if (this.#loop) return;
    await this.#load();
    this.#loop = this.#run();
    this.#logger.info({ schedules: [...this.#app.schedules.keys()] }, 'scheduler started');
  }

  async stop(): Promise<void> {
    this.#abort.abort();
    await this.#loop;
  }

  /** Enqueues every tick due by `now` under each schedule's missed policy; returns how many new tasks were created. */
  async runDue(now: number = this.#clock.now()): Promise<number> {
    if (this.#last.size < this.#app.schedules.size) await this.#load(now);
    let created = 0;
    for (const schedule of this.#app.schedules.values()) {
      const last = this.#last.get(schedule.name)!;
      const ticks = this.#ticksToRun(schedule, last, now);
      for (const tick of ticks.run) {
        const key = schedule.keyFor(tick);
        const handle = await schedule.task.enqueue(schedule.payload as never, { ...schedule.options, id: key, idempotencyKey: key });
        if (!handle.duplicate) created++;
      }
      if (ticks.newest !== null) {
        this.#last.set(schedule.name, ticks.newest);
        await this.#marks?.advanceMark(markName(schedule), ticks.newest);
      }
    }
    return created;
  }

  /** Name, expression, time zone, next and last run of every schedule (for inspect and the dashboard). */
  describe(now: number = this.#clock.now()): ScheduleInfo[] {
    return [...this.#app.schedules.values()].map((s) => {
      const last = this.#last.get(s.name) ?? null;
      return { name: s.name, task: s.task.name, expression: s.expression, tz: s.tz, missed: s.missed, nextRun: s.next(Math.max(now, last ?? now)), lastRun: last };
    });
  }

  #ticksToRun(schedule: Schedule, last: number, now: number): { run: number[]; newest: number | null } {
    const policy = schedule.missed;
    const keep = policy === 'skip' ? 0 : policy === 'run-once' ? 1 : policy.catchUp;
    // Only the newest few ticks can matter (on-time ones plus `keep` missed ones), so a long
    // downtime costs a bounded walk, not one step per missed minute.
    const window = Math.max(1, keep) + Math.ceil(this.#graceMs / 1_000) + 1;
    const due = schedule.ticksBetween(last, now, window);
    if (due.length === 0) return { run: [], newest: null };
    const onTime = due.filter((t) => now - t <= this.#graceMs);
    const missed = due.filter((t) => now - t > this.#graceMs);
    if (missed.length > 0) this.#logger.info({ schedule: schedule.name, missed: missed.length, policy }, 'ticks were missed while no scheduler ran');
    return { run: [...(keep > 0 ? missed.slice(-keep) : []), ...onTime], newest: due[due.length - 1]! };
  }

  async #load(now: number = this.#clock.now()): Promise<void> {
    const { results } = await this.#app.connection();
    this.#marks = results.marks;
    if (!this.#marks) this.#logger.warn('the result store keeps no marks: after a restart, missed ticks are skipped whatever the policy');
    for (const schedule of this.#app.schedules.values()) {
      if (this.#last.has(schedule.name)) continue;
      const mark = (await this.#marks?.getMark(markName(schedule))) ?? null;
      // A schedule never run before starts now: a new schedule does not back-fill.
      this.#last.set(schedule.name, mark ?? now);
    }
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let waitMs = this.#maxSleepMs;
      try {
        const now = this.#clock.now();
        await this.runDue(now);
        const next = Math.min(...[...this.#app.schedules.values()].map((s) => s.next(Math.max(now, this.#last.get(s.name) ?? now))));
        waitMs = Math.min(this.#maxSleepMs, Math.max(0, next - this.#clock.now()));
      } catch (err) {
        this.#logger.error({ err: String(err) }, 'scheduler tick failed; retrying in 1 s');
        waitMs = 1_000;
      }
      await this.#clock.sleep(waitMs, signal);
    }
  }
}
