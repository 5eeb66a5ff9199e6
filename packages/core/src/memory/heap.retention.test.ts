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
  it('lets go of messages once taken, so a queue that keeps flowing does not grow', async () => {
    const fifo = new Fifo<object>();
    const taken: WeakRef<object>[] = [];
    // Steady flow: a handful waiting, thousands passing through.
    for (let i = 0; i < 10; i++) fifo.push({ i });
    for (let i = 10; i < 20_000; i++) {
      fifo.push({ i });
      taken.push(new WeakRef(fifo.shift()!));
    }
    expect(fifo.size).toBe(10);
    await collect();
    const alive = taken.filter((r) => r.deref() !== undefined).length;
    // Only the batch since the last compaction may still be referenced (at most ~1k of 20k).
    expect(alive).toBeLessThan(2_000);
    expect(fifo.peek()).toEqual({ i: 19_990 });
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
