// The quickstart: a worker and a producer in one process, on the embedded memory:// broker.
// Run it with `npm run demo`. With a server: CELERIAC_BROKER_URL=redis://127.0.0.1:6379 npm run demo
import { TaskFailedError } from '@celeriac/core';
import { Worker } from '@celeriac/worker';
import { add, app, chargeCard, chargesMade, fetchQuote } from './app.js';

const worker = new Worker(app, { concurrency: 4 });
worker.on('task:retrying', (e) =>
  console.log(`  ↻ ${e.message.task} attempt ${e.message.attempt} failed (${e.error.message}); retrying in ${e.delayMs} ms`),
);
await worker.start();

const sum = await add.enqueue({ a: 1, b: 2 });
console.log(`math.add(1, 2) = ${await sum.result({ timeoutMs: 5_000 })}   [task ${sum.id}, ${await sum.state()}]`);

const quote = await fetchQuote.enqueue({ symbol: 'CELR' });
console.log('quotes.fetch:', await quote.result({ timeoutMs: 10_000 }));

const first = await chargeCard.enqueue({ orderId: 'order-42', cents: 1999 }, { idempotencyKey: 'order-42' });
const again = await chargeCard.enqueue({ orderId: 'order-42', cents: 1999 }, { idempotencyKey: 'order-42' });
console.log('billing.charge:', await again.result({ timeoutMs: 5_000 }));
console.log(`  same task both times: ${first.id === again.id} (second enqueue duplicate: ${again.duplicate}); cards charged: ${chargesMade}`);

try {
  await (await chargeCard.enqueue({ orderId: 'order-43', cents: 5_000_000 })).result({ timeoutMs: 5_000 });
} catch (err) {
  if (!(err instanceof TaskFailedError)) throw err;
  console.log(`billing.charge (too large) failed as expected: ${err.error?.message}`);
}

try {
  await add.enqueue({ a: 1, b: 'two' as unknown as number });
} catch (err) {
  console.log(`invalid enqueue refused: ${(err as Error).message}`);
}

await worker.stop();
await app.close();
