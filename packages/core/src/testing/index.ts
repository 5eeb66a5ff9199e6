/**
 * @celeriac/core/testing — the conformance suite every backend runs, and helpers for your own tests.
 *
 *   import { describeBroker } from '@celeriac/core/testing';
 *   describeBroker('redis', async (options) => ({ broker: await connectBroker(url, options), injectRaw, close }));
 *   // vitest then runs every rule of the Broker and ResultBackend contracts against it.
 */
import { describeTaskRules } from './app-suite.js';
import { describeCoordinationRules } from './coordination-suite.js';
import { describeBrokerContract } from './broker-suite.js';
import { describeDeadLetterRules } from './dead-letter-suite.js';
import type { BrokerFactory, SuiteOptions } from './fixture.js';
import { describeReliabilityRules } from './reliability-suite.js';
import { describeStoreRules } from './store-suite.js';

export { collect, describeBrokerContract } from './broker-suite.js';
export { describeTaskRules } from './app-suite.js';
export { describeCoordinationRules } from './coordination-suite.js';
export { describeDeadLetterRules } from './dead-letter-suite.js';
export { describeReliabilityRules } from './reliability-suite.js';
export { describeStoreRules } from './store-suite.js';
export type { BrokerFactory, BrokerFixture, SuiteOptions } from './fixture.js';
export { gate, makeMessage, sleep, uniqueQueue } from './messages.js';
export { stallable } from './stall.js';

/**
 * Runs the whole conformance suite (contract, leases and limits, result-store claims, task rules)
 * against one backend. `factory(options)` must build a broker that enforces the given BrokerOptions.
 */
export function describeBroker(name: string, factory: BrokerFactory, options: SuiteOptions = {}): void {
  describeBrokerContract(name, factory, options);
  describeDeadLetterRules(name, factory);
  describeReliabilityRules(name, factory, options);
  describeStoreRules(name, factory);
  describeCoordinationRules(name, factory, options);
  describeTaskRules(name, factory, options);
}
