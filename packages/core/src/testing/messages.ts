import { randomUUID } from 'node:crypto';
import type { TaskMessage } from '../envelope.js';

/** A unique queue name per test, so tests never see each other's messages (no FLUSHALL). */
export function uniqueQueue(prefix = 'cq'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** A valid envelope with sensible defaults, for driving a broker directly. */
export function makeMessage(queue: string, overrides: Partial<TaskMessage> = {}): TaskMessage {
  return {
    v: 1,
    id: randomUUID(),
    task: 'conformance.echo',
    queue,
    payload: { n: 0 },
    attempt: 1,
    maxAttempts: 3,
    eta: null,
    expiresAt: null,
    priority: 0,
    idempotencyKey: null,
    trace: {},
    createdAt: Date.now(),
    lastError: null,
    ...overrides,
  };
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A promise the test opens when it wants a handler (or anything waiting on `opened`) to go on. */
export function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}
