/**
 * A lease this attempt holds in the result store besides its delivery's lease: its idempotency
 * key's claim, or (where the store is apart from the broker) its task claim. The worker's lease
 * keeper renews it while it is not `done`, and aborts the attempt when it is lost or its
 * `validUntil` is about to pass without a confirmed renewal.
 */
export interface Claim {
  readonly kind: 'idempotency key' | 'task';
  /** Known valid until this epoch ms: the send time of the last confirmed claim or renewal + its lease. */
  validUntil: number;
  /** Released, or consumed by a store: never renewed again. */
  done: boolean;
  /** Extends the lease; resolves `false` when another owner holds it, or it ended (a record was stored). */
  renew(leaseMs: number): Promise<boolean>;
}

const NO_CLAIMS: readonly Claim[] = Object.freeze([]);

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
  #claims: Claim[] | undefined;

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

  /** Store leases taken for this attempt (see `Claim`); the lease keeper renews them. Most attempts hold none. */
  get claims(): readonly Claim[] {
    return this.#claims ?? NO_CLAIMS;
  }

  addClaim(claim: Claim): void {
    (this.#claims ??= []).push(claim);
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
