// The chaos suite's fast variants (small N, seconds each): every scenario against real `celeriac
// worker` processes, on Redis and on RabbitMQ alone (CHAOS_BROKERS=redis,amqp,amqp+redis to add
// RabbitMQ with a Redis store). The full runs are `npm run chaos -- <scenario> --broker …`.
// Each broker is a lane: its scenarios run one at a time (timing criteria need a quiet machine),
// and the two lanes run side by side. Every scenario bounds its own waits.
import { describe, expect, it } from 'vitest';
import { runScenario, type Report } from '../chaos/run.js';
import { BROKERS, type BrokerKind } from '../chaos/harness.js';
import { SCENARIOS } from '../chaos/scenarios/index.js';

const brokers = (process.env.CHAOS_BROKERS ?? 'redis,amqp').split(',').filter((b): b is BrokerKind => (BROKERS as readonly string[]).includes(b));
const lanes = new Map<BrokerKind, Promise<unknown>>();

/** Runs the scenario once its lane is free. */
function inLane(broker: BrokerKind, scenario: string): Promise<Report> {
  const previous = lanes.get(broker) ?? Promise.resolve();
  const report = previous.then(() => runScenario(scenario, { broker, tasks: undefined, fast: true }));
  lanes.set(broker, report.catch(() => {}));
  return report;
}

describe.concurrent('chaos suite, fast variants', () => {
  for (const scenario of Object.keys(SCENARIOS)) {
    for (const broker of brokers) {
      it(`${scenario} on ${broker}`, { timeout: 15 * 60_000 }, async () => {
        const report = await inLane(broker, scenario);
        console.log(JSON.stringify(report));
        expect(report.failures, JSON.stringify(report)).toEqual([]);
      });
    }
  }
});
