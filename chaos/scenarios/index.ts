import type { Outcome, Run, ScenarioOptions } from '../harness.js';
import { beat } from './beat.js';
import { brokerKill, brokerRestart } from './broker.js';
import { block, kill, poison } from './crash.js';
import { badwire, idemRace } from './input.js';
import { memory, steady } from './load.js';
import { partition, resets } from './network.js';

export type Scenario = (run: Run, options: ScenarioOptions) => Promise<Outcome>;

/** Every scenario by its command-line name. */
export const SCENARIOS: Record<string, Scenario> = {
  steady,
  memory,
  kill,
  block,
  poison,
  'broker-restart': brokerRestart,
  'broker-kill': brokerKill,
  resets,
  partition,
  badwire,
  'idem-race': idemRace,
  beat,
};

/**
 * What RabbitMQ alone (`--broker amqp`, per-process result path) cannot promise, by scenario: each
 * needs state shared across processes, which only a shared store gives (`--broker amqp+redis`).
 * docs/reliability.md says the same to users.
 */
export const BEYOND_RABBITMQ_ALONE: Record<string, string> = {
  resets: 'running each task once across reconnects needs deduplication by task id in a shared store',
  partition: 'no two concurrent runs of a key across workers needs the key claimed in a shared store (RabbitMQ alone claims keys per process)',
  'idem-race': 'one task per key from several producer processes needs the key reserved in a shared store',
  beat: 'one run per tick from several schedulers needs the tick deduplicated in a shared store',
};
