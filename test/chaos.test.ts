// The chaos suite's fast variants (small N, seconds each): every scenario against real `celeriac
// worker` processes, on Redis, on RabbitMQ with a Redis store, and on RabbitMQ alone except where
// it cannot promise what the scenario checks (BEYOND_RABBITMQ_ALONE: those are not run there, and
// docs/reliability.md says so). CHAOS_BROKERS=redis,amqp narrows the set. The full runs are
// `npm run chaos -- <scenario> --broker …`. One scenario at a time, after the rest of the suite
// (vitest.config.ts): timing criteria need the machine to themselves. Every scenario bounds its waits.
import { describe, expect, it } from 'vitest';
import { runScenario } from '../chaos/run.js';
import { BROKERS, type BrokerKind } from '../chaos/harness.js';
import { BEYOND_RABBITMQ_ALONE, SCENARIOS } from '../chaos/scenarios/index.js';

const brokers = (process.env.CHAOS_BROKERS ?? 'redis,amqp+redis,amqp').split(',').filter((b): b is BrokerKind => (BROKERS as readonly string[]).includes(b));

describe('chaos suite, fast variants', () => {
  for (const broker of brokers) {
    for (const scenario of Object.keys(SCENARIOS)) {
      if (broker === 'amqp' && scenario in BEYOND_RABBITMQ_ALONE) continue;
      it(`${scenario} on ${broker}`, { timeout: 15 * 60_000 }, async () => {
        const report = await runScenario(scenario, { broker, tasks: undefined, fast: true });
        console.log(JSON.stringify(report));
        expect(report.failures, JSON.stringify(report)).toEqual([]);
      });
    }
  }
});
