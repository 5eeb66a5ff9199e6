import type { Broker, BrokerOptions } from '../broker.js';
import type { ResultBackend } from '../results.js';

/** What a backend hands the conformance suite. One fixture may serve every test: each test uses its own queue names. */
export interface BrokerFixture {
  broker: Broker;
  /** The result store to pair with the broker (default: `broker.results`). */
  results?: ResultBackend;
  /** Puts raw text on `queue` as if it had arrived off the wire (to test malformed messages). */
  injectRaw(queue: string, raw: string): Promise<void>;
  /** Closes connections and removes what the fixture created. */
  close(): Promise<void>;
}

/**
 * Builds a fixture. Without `options` the backend's defaults (`DEFAULT_BROKER_OPTIONS`); with them,
 * a broker that enforces them — the suite passes small limits to test size refusal and
 * dead-letter retention, so a factory must hand them to its broker, not drop them.
 */
export type BrokerFactory = (options?: BrokerOptions) => Promise<BrokerFixture>;

export interface SuiteOptions {
  /** Lease used where a test waits for one to lapse (default 250 ms); raise it for slow servers. */
  shortLeaseMs?: number;
  /** False for a store without coordination state (RabbitMQ alone): the suite checks it says so. */
  coordination?: boolean;
}
