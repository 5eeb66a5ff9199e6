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
