import { describe, expect, it } from 'vitest';
import { dashboardMetrics, STALE_LABELS_MS } from './metrics.js';
import type { CountsDelta } from './rates.js';
import type { Sampler } from './sampler.js';

// The dashboard's counters on an injected clock, fed deltas as the sampler would.
function fakeSampler() {
  const listeners: ((d: readonly CountsDelta[]) => void)[] = [];
  const sampler = { latest: null, onDeltas: (l: (d: readonly CountsDelta[]) => void) => listeners.push(l) } as unknown as Sampler;
  return { sampler, emit: (d: CountsDelta[]) => listeners.forEach((l) => l(d)) };
}

const delta = (task: string, succeeded: number): CountsDelta => ({ queue: 'q', task, succeeded, failed: 0, retried: 0, expired: 0, revoked: 0, from: 0, to: 1 });

describe('dashboard metrics', () => {
  it('drops the series of a (queue, task) with nothing new for a day; the others stay', async () => {
    let t = 1_000_000;
    const { sampler, emit } = fakeSampler();
    const registry = dashboardMetrics(sampler, () => t);
    emit([delta('old.task', 2), delta('live.task', 1)]);
    expect(await registry.metrics()).toContain('task="old.task"');
    for (let hour = 1; hour <= 25; hour++) {
      t += 3_600_000;
      emit([delta('live.task', 1)]);
    }
    expect(t - 1_000_000).toBeGreaterThan(STALE_LABELS_MS);
    const text = await registry.metrics();
    expect(text).not.toContain('task="old.task"');
    expect(text).toMatch(/celeriac_tasks_total\{queue="q",task="live.task",outcome="succeeded"\} 26/);
  });
});
