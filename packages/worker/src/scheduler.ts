import { declareSchedules, scheduleMarkName, withTimeout, type App, type Logger, type MarkStore, type ResultBackend, type Schedule } from '@celeriac/core';
import { systemClock, type Clock } from './clock.js';

export interface SchedulerOptions {
  clock?: Clock;
  logger?: Logger;
  /** A tick this late or less is on time; older ones count as missed (default 60 s). */
  graceMs?: number;
  /** Longest single sleep, so a jump of the system clock is noticed (default 60 s). */
  maxSleepMs?: number;
  /**
   * You run exactly one scheduler for these schedules: silences the start-up warning about a
   * result store that is not shared across processes (see `start`).
   */
  single?: boolean;
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

const markName = (schedule: Schedule) => scheduleMarkName(schedule.name);

/** Schedules are declared to the store (for inspect) at start and then hourly, well within their TTL. */
const DECLARE_EVERY_MS = 3_600_000;

/**
 * The periodic-task scheduler (beat). Safe to run in any number of processes at once.
 * 1. Computes every schedule's ticks (cron-parser, with time zones) and sleeps until the earliest.
 * 2. Enqueues each tick with an id and idempotency key derived from the schedule name and tick time,
 *    so however many schedulers run, the broker keeps one task per tick — no leader election.
 * 3. Keeps each schedule's last tick as a mark in the result store, so a restart neither repeats
 *    ticks nor back-fills more than the schedule's `missed` policy allows.
 * 4. Tells apart late ticks (this scheduler was running, its loop was held up: each runs while
 *    within `graceMs`) from missed ones (they passed before it started, or beyond the grace): of
 *    those only the newest may count as on time, and the `missed` policy decides the rest.
 * 5. Warns at start when the result store is not shared across processes, where several
 *    schedulers would each enqueue every tick.
 */
export class Scheduler {
  readonly #app: App;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #graceMs: number;
  readonly #maxSleepMs: number;
  readonly #single: boolean;
  readonly #last = new Map<string, number>();
  /** When this scheduler began watching each schedule: ticks at or before it passed while it did not run. */
  readonly #since = new Map<string, number>();
  readonly #abort = new AbortController();
  #marks: MarkStore | undefined;
  #loop: Promise<void> | undefined;
  #declaredAt = -Infinity;

  constructor(app: App, options: SchedulerOptions = {}) {
    this.#app = app;
    this.#clock = options.clock ?? systemClock;
    this.#logger = options.logger ?? app.logger;
    this.#graceMs = options.graceMs ?? 60_000;
    this.#maxSleepMs = options.maxSleepMs ?? 60_000;
    this.#single = options.single ?? false;
  }

  /** Loads the last-run marks and starts the loop. */
  async start(): Promise<void> {
    if (this.#loop) return;
    await this.#load();
    this.#warnUnlessShared((await this.#app.connection()).results);
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
    if (now - this.#declaredAt >= DECLARE_EVERY_MS) await this.#declare(now);
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
    // How many runs a gap may take in all: skip and run-once one (the current tick, on time or,
    // for run-once, late), catch-up n.
    const budget = policy === 'skip' || policy === 'run-once' ? 1 : policy.catchUp;
    // Only the newest few ticks can matter (on-time ones plus the budget), so a long downtime
    // costs a bounded walk, not one step per missed minute (periods are ≥ 1 s).
    const window = budget + Math.ceil(this.#graceMs / 1_000) + 1;
    const due = schedule.ticksBetween(last, now, window);
    if (due.length === 0) return { run: [], newest: null };
    const newest = due[due.length - 1]!;
    const since = this.#since.get(schedule.name) ?? now;
    // Late is not missed: a tick that came while this scheduler ran is on time within the grace.
    // Of the ticks that passed before it started only the newest can be (the current one), so a
    // restart within the grace no longer back-fills every tick since the last run.
    const onTime = due.filter((t) => now - t <= this.#graceMs && (t > since || t === newest));
    const missed = due.filter((t) => !onTime.includes(t));
    const backfill = policy === 'skip' ? 0 : Math.max(0, budget - onTime.length);
    if (missed.length > 0) this.#logger.info({ schedule: schedule.name, missed: missed.length, run: Math.min(backfill, missed.length), policy }, 'ticks were missed while no scheduler ran');
    return { run: [...(backfill > 0 ? missed.slice(-backfill) : []), ...onTime], newest };
  }

  /** Tells the store which schedules run (`app.inspect.schedules()`); best effort, bounded, never fails a tick. */
  async #declare(now: number): Promise<void> {
    this.#declaredAt = now;
    const coordination = (await this.#app.connection()).results.coordination;
    if (!coordination || this.#app.schedules.size === 0) return;
    await withTimeout(declareSchedules(this.#app, coordination), 5_000, () => new Error('timed out after 5 s')).catch((err: unknown) => {
      this.#declaredAt = -Infinity;
      this.#logger.warn({ err: String(err) }, 'could not declare the schedules to the store (inspect schedules); will try again next tick');
    });
  }

  #warnUnlessShared(results: ResultBackend): void {
    if (results.capabilities.shared || this.#single || this.#app.schedules.size === 0) return;
    this.#logger.warn(
      { schedules: [...this.#app.schedules.keys()] },
      "beat: the result store is not shared across processes (e.g. RabbitMQ with its default reply-queue results), so schedulers in other processes would each enqueue every tick. Run a single scheduler, or give every process a shared store: createApp({ results: 'redis://…' }). If this is the only scheduler, pass new Scheduler(app, { single: true }) to silence this warning.",
    );
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
      this.#since.set(schedule.name, now);
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
