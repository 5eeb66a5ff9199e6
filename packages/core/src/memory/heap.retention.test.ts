import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { Fifo } from './heap.js';

// A garbage collector to call, without changing how the test process is started.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Collects, then lets the WeakRefs of the finished job be cleared. */
async function collect(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

describe('Fifo over a long life (the memory broker never restarts)', () => {
  // Steady flow through a queue with `waiting` messages always queued: 30k pass through.
  it.each([10, 5_000])('lets go of messages once taken, so a flowing queue does not grow (%i waiting)', async (waiting) => {
    const fifo = new Fifo<object>();
    const taken: WeakRef<object>[] = [];
    for (let i = 0; i < waiting; i++) fifo.push({ i });
    for (let i = waiting; i < waiting + 30_000; i++) {
      fifo.push({ i });
      taken.push(new WeakRef(fifo.shift()!));
    }
    expect(fifo.size).toBe(waiting);
    await collect();
    const alive = taken.filter((r) => r.deref() !== undefined).length;
    // Only those taken since the last compaction may still be referenced: about as many as wait.
    expect(alive).toBeLessThanOrEqual(Math.max(1_025, waiting + 1));
    expect(fifo.peek()).toEqual({ i: 30_000 });
  });

  it('drains a backlog of 300,000 in order (taking from the front stays cheap)', () => {
    const fifo = new Fifo<number>();
    const n = 300_000;
    for (let i = 0; i < n; i++) fifo.push(i);
    let expected = 0;
    for (let v = fifo.shift(); v !== undefined; v = fifo.shift()) {
      if (v !== expected) throw new Error(`got ${v} where ${expected} was next`);
      expected++;
    }
    expect(expected).toBe(n);
    expect(fifo.size).toBe(0);
  });
});
