/**
 * The abort switch of one task attempt, made cheap for the common case: no AbortController (and
 * no listener) exists unless the handler reads `ctx.signal`. Aborting rejects `race()` at once,
 * which is how a time limit or a hard stop ends an attempt whose handler ignores its signal.
 */
export class Attempt {
  #controller: AbortController | undefined;
  #onHandlerDone: (() => void) | undefined;
  #reason: unknown;
  #aborted = false;
  #reject: ((reason: unknown) => void) | undefined;

  /** `onHandlerDone` runs once, when the handler has returned or thrown (its outcome is then being stored). */
  constructor(onHandlerDone?: () => void) {
    this.#onHandlerDone = onHandlerDone;
  }

  /** Marks the end of the handler's part; idempotent. */
  handlerDone(): void {
    const done = this.#onHandlerDone;
    this.#onHandlerDone = undefined;
    done?.();
  }

  get handlerRunning(): boolean {
    return this.#onHandlerDone !== undefined;
  }

  get aborted(): boolean {
    return this.#aborted;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /** Created on first use: most handlers never look at it. */
  get signal(): AbortSignal {
    if (!this.#controller) {
      this.#controller = new AbortController();
      if (this.#aborted) this.#controller.abort(this.#reason);
    }
    return this.#controller.signal;
  }

  abort(reason: unknown): void {
    if (this.#aborted) return;
    this.#aborted = true;
    this.#reason = reason;
    this.#controller?.abort(reason);
    this.#reject?.(reason);
  }

  /** Settles with `work`, or rejects with the abort reason as soon as the attempt is aborted. */
  race<T>(work: Promise<T>): Promise<T> {
    if (this.#aborted) return Promise.reject(this.#reason);
    return new Promise<T>((resolve, reject) => {
      this.#reject = reject;
      work.then(resolve, reject);
    });
  }
}
