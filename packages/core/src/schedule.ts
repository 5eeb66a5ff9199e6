import { CronExpressionParser } from 'cron-parser';
import type { z } from 'zod';
import { ValidationError } from './errors.js';
import { enqueueOptionsSchema, parseOptions } from './options.js';
import type { Task } from './task.js';

const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export type MissedPolicy = 'skip' | 'run-once' | { catchUp: number };

export interface ScheduleDefinition<I extends z.ZodType> {
  /** 5-field (minute …) or 6-field (second …) cron expression. */
  cron?: string;
  /** IANA time zone for `cron` (default UTC). */
  tz?: string;
  /** A fixed period such as `30s`, `15m`, `2h`, `1d`; ticks fall on multiples of it since the epoch. */
  every?: string;
  everyMs?: number;
  task: Task<I, unknown>;
  payload: z.input<I>;
  /**
   * What to do with ticks that passed while no scheduler ran (default `skip`). After such a gap
   * the newest tick still runs if it is less than the grace (60 s) late — it is the current one;
   * `skip` runs nothing else, `run-once` runs one tick for the whole gap (the newest, however
   * late), `{ catchUp: n }` runs the newest n ticks at most.
   */
  missed?: MissedPolicy;
  /** Per-tick enqueue options (priority, queue, expiresInMs). */
  options?: { priority?: number; queue?: string; expiresInMs?: number };
}

/** The first tick strictly after `after` of a schedule known by its expression (as inspect reads it back from the store). */
export function nextTick(s: { expression: string; tz: string; periodMs: number | null }, after: number): number {
  if (s.periodMs !== null) return (Math.floor(after / s.periodMs) + 1) * s.periodMs;
  return CronExpressionParser.parse(s.expression, { currentDate: new Date(after), tz: s.tz }).next().getTime();
}

/**
 * One periodic task: when it ticks and what it enqueues. Tick times are pure functions of the
 * definition, so every scheduler instance computes the same ones and derives the same
 * idempotency key per tick — which is what makes N instances enqueue each tick once.
 */
export class Schedule {
  readonly expression: string;
  readonly tz: string;
  readonly missed: MissedPolicy;
  readonly #periodMs: number | null;

  constructor(
    readonly name: string,
    readonly task: Task,
    readonly payload: unknown,
    readonly options: { priority?: number; queue?: string; expiresInMs?: number },
    definition: Omit<ScheduleDefinition<z.ZodType>, 'task' | 'payload' | 'options'>,
  ) {
    const fail = (problem: string): never => {
      throw new ValidationError('INVALID_OPTIONS', `schedule "${name}": ${problem}`);
    };
    const { cron, tz, every, everyMs } = definition;
    const kinds = [cron, every, everyMs].filter((x) => x !== undefined).length;
    if (kinds !== 1) fail('give exactly one of cron, every or everyMs');
    this.tz = tz ?? 'UTC';
    if (!isTimeZone(this.tz)) fail(`unknown time zone ${JSON.stringify(tz)}; use an IANA name such as "Europe/Paris"`);
    if (cron !== undefined) {
      if (cron.trim().split(/\s+/).length < 5 && !cron.trim().startsWith('@')) fail(`invalid cron expression ${JSON.stringify(cron)}: expected 5 fields (minute hour day month weekday) or 6 (with seconds first)`);
      try {
        CronExpressionParser.parse(cron, { tz: this.tz, strict: false }).next();
      } catch (err) {
        fail(`invalid cron expression ${JSON.stringify(cron)}: ${(err as Error).message}`);
      }
      this.expression = cron;
      this.#periodMs = null;
    } else {
      if (tz !== undefined) fail('tz applies to cron schedules only');
      this.#periodMs = everyMs ?? parsePeriod(every!, fail);
      if (!Number.isInteger(this.#periodMs) || this.#periodMs < 1_000) fail(`the period must be a whole number of ms ≥ 1000 (got ${this.#periodMs})`);
      this.expression = every ?? `${everyMs}ms`;
    }
    this.missed = definition.missed ?? 'skip';
    const m = this.missed;
    if (m !== 'skip' && m !== 'run-once' && !(typeof m === 'object' && Number.isInteger(m.catchUp) && m.catchUp >= 1)) {
      fail(`missed must be 'skip', 'run-once' or { catchUp: n } with n ≥ 1 (got ${JSON.stringify(m)})`);
    }
    parseOptions(enqueueOptionsSchema, options, `options of schedule "${name}"`);
  }

  /** The fixed period of an `every` schedule, null for cron. */
  get periodMs(): number | null {
    return this.#periodMs;
  }

  /** The first tick strictly after `after` (epoch ms). */
  next(after: number): number {
    return nextTick(this, after);
  }

  /** Ticks in (after, until], oldest first; at most the newest `limit` of them. */
  ticksBetween(after: number, until: number, limit = Infinity): number[] {
    const ticks: number[] = [];
    if (this.#periodMs !== null) {
      const p = this.#periodMs;
      for (let t = Math.floor(until / p) * p; t > after && ticks.length < limit; t -= p) ticks.push(t);
      return ticks.reverse();
    }
    // A long downtime must not cost one step per missed tick: walk back ~`limit` ticks to find where
    // to start, then walk forward. Forward only, because cron-parser's next() and prev() disagree
    // across a DST gap (prev() skips the shifted tick next() yields), and next() defines the ticks.
    let from = after;
    if (limit !== Infinity) {
      const back = CronExpressionParser.parse(this.expression, { currentDate: new Date(until + 1), tz: this.tz });
      // Twice the steps: prev() may also yield ticks next() does not (a repeated hour at fall-back).
      for (let i = 0, t = back.prev().getTime(); t > after; i++, t = back.prev().getTime()) {
        if (i === 2 * limit) {
          from = t;
          break;
        }
      }
    }
    const it = CronExpressionParser.parse(this.expression, { currentDate: new Date(from), tz: this.tz });
    for (let t = it.next().getTime(); t <= until; t = it.next().getTime()) ticks.push(t);
    return ticks.length > limit ? ticks.slice(ticks.length - limit) : ticks;
  }

  /** The idempotency key (and task id) of one tick: the same in every scheduler instance. */
  keyFor(tick: number): string {
    return `beat:${this.name}:${tick}`;
  }
}

function parsePeriod(every: string, fail: (p: string) => never): number {
  const m = /^(\d+)\s*(ms|s|m|h|d)$/.exec(every.trim());
  if (!m) return fail(`every must look like "30s", "15m", "2h" or "1d" (got ${JSON.stringify(every)})`);
  return Number(m[1]) * UNITS[m[2]!]!;
}

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
