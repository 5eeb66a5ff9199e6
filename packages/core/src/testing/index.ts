/**
 * @celeriac/core/testing — the conformance suite every backend runs, and helpers for your own tests.
 *
 *   import { describeBroker } from '@celeriac/core/testing';
 *   describeBroker('redis', async () => ({ broker, injectRaw, close }));
 *   // vitest then runs every rule of the Broker and ResultBackend contracts against it.
 */
import { describeTaskRules } from './app-suite.js';
import { describeBrokerContract } from './broker-suite.js';
import type { BrokerFactory, SuiteOptions } from './fixture.js';

export { collect, describeBrokerContract } from './broker-suite.js';
export { describeTaskRules } from './app-suite.js';
export type { BrokerFactory, BrokerFixture, SuiteOptions } from './fixture.js';
export { makeMessage, sleep, uniqueQueue } from './messages.js';

/** Runs the whole conformance suite (contract + task rules) against one backend. */
export function describeBroker(name: string, factory: BrokerFactory, options: SuiteOptions = {}): void {
  describeBrokerContract(name, factory, options);
  describeTaskRules(name, factory, options);
}
