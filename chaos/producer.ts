// One producer of the idempotency race: enqueues every key 5 times at once, keys 50 at a time,
// and prints one JSON line per enqueue: {"k": key index, "id": task id returned}.
// Environment (set by the runner): CHAOS_BROKER, CHAOS_RESULTS_URL, CHAOS_QUEUE, CHAOS_RUN, CHAOS_KEYS.
import { chaosApp } from './tasks.js';

const env = (name: string): string => {
  const value = process.env[name];
  if (!value) throw new Error(`chaos/producer.ts: ${name} is not set (the chaos runner sets it)`);
  return value;
};

const run = env('CHAOS_RUN');
const keys = Number(env('CHAOS_KEYS'));
const { app, work } = chaosApp({ broker: env('CHAOS_BROKER'), results: process.env.CHAOS_RESULTS_URL, queue: env('CHAOS_QUEUE'), ledger: null });
const lines: string[] = [];
for (let from = 0; from < keys; from += 50) {
  const batch: Promise<void>[] = [];
  for (let k = from; k < Math.min(keys, from + 50); k++) {
    for (let copy = 0; copy < 5; copy++) {
      batch.push(
        work.enqueue({ i: k, k, mode: 'keyed' }, { idempotencyKey: `${run}-key-${k}` }).then((h) => {
          lines.push(JSON.stringify({ k, id: h.id }));
        }),
      );
    }
  }
  await Promise.all(batch);
}
await app.close();
// Exit only once stdout is flushed: a pipe takes ~10,000 lines in several writes.
process.stdout.write(lines.join('\n') + '\n', () => process.exit(0));
