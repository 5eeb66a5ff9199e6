/** Time as the scheduler sees it; tests pass a manual clock to run months of ticks instantly. */
export interface Clock {
  now(): number;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      if (signal.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      signal.addEventListener('abort', done, { once: true });
    }),
};

/** A clock moved by hand, for tests: sleepers wake when `advanceTo` passes their time. */
export class ManualClock implements Clock {
  #sleepers: { at: number; wake: () => void }[] = [];

  constructor(private t: number) {}

  now = (): number => this.t;

  sleep = (ms: number, signal: AbortSignal): Promise<void> =>
    new Promise<void>((resolve) => {
      // As a real timer does: a sleep that is already due ends at once (not at the next advance).
      if (signal.aborted || ms <= 0) return resolve();
      const sleeper = { at: this.t + ms, wake: () => done() };
      const done = () => {
        signal.removeEventListener('abort', done);
        this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
        resolve();
      };
      this.#sleepers.push(sleeper);
      signal.addEventListener('abort', done, { once: true });
    });

  advanceTo(t: number): void {
    this.t = t;
    const due = this.#sleepers.filter((s) => s.at <= t);
    this.#sleepers = this.#sleepers.filter((s) => s.at > t);
    for (const s of due) s.wake();
  }
}
