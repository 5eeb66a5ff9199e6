import { uniqueQueue } from '@celeriac/core/testing';
import type { App } from '@celeriac/core';
import type { AmqpBroker } from '@celeriac/amqp-backend';
import type { Worker } from '@celeriac/worker';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { AMQP_URL } from '../../packages/amqp-backend/src/testing.js';
import { CLUSTER_URL, ensureCluster, removeClusterPrefix } from '../redis/cluster.js';
import { removePrefix, uniquePrefix, urlWith } from '../redis/helpers.js';

/**
 * Every broker that keeps control state, for the control-plane tests: memory, Redis, Redis Cluster,
 * RabbitMQ with a Redis store. Registers the hooks that start the cluster, stop the `workers`,
 * delete the RabbitMQ queues of the `apps` and remove the Redis keys. One call per test file.
 */
export function controlBackends(name: string) {
  const prefix = uniquePrefix(name);
  beforeAll(() => ensureCluster(), 120_000);
  afterAll(() => Promise.all([removePrefix(prefix), removeClusterPrefix(prefix)]));
  const apps: App[] = [];
  const workers: Worker[] = [];
  afterEach(async () => {
    for (const w of workers.splice(0)) await w.stop({ graceMs: 1_000 });
    for (const a of apps.splice(0)) {
      const amqp = (await a.connection()).broker as Partial<AmqpBroker>;
      if (amqp.declaredQueues) await amqp.link!.withChannel(async (ch) => void (await Promise.all([...amqp.declaredQueues!].map((n) => ch.deleteQueue(n).catch(() => {})))));
      await a.close();
    }
  });
  const backends = [
    { name: 'memory', options: () => ({ broker: `memory://${name}-${uniqueQueue('m')}` }) },
    { name: 'redis', options: () => ({ broker: urlWith(prefix) }) },
    { name: 'redis-cluster', options: () => ({ broker: urlWith(prefix, CLUSTER_URL) }) },
    { name: 'amqp+redis', options: () => ({ broker: AMQP_URL, results: urlWith(prefix) }) },
  ];
  return { prefix, backends, apps, workers };
}
