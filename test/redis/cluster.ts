import { Cluster } from 'ioredis';
import { execFileSync } from 'node:child_process';
import { ensureRedisServer, redisCli, waitUntil } from './servers.js';

export const CLUSTER_PORTS = [7001, 7002, 7003] as const;
export const CLUSTER_URL = `redis://127.0.0.1:${CLUSTER_PORTS[0]}?cluster=1`;

/**
 * Makes sure a 3-node Redis Cluster (3 masters, no replicas) runs on loopback ports 7001–7003.
 * Idempotent: a cluster already in state ok is left alone; missing nodes are started; the slots
 * are assigned with `redis-cli --cluster create` only if the nodes do not form a cluster yet.
 * Uses redis-server and redis-cli from the machine (Debian's redis-server and redis-tools).
 */
export async function ensureCluster(): Promise<string> {
  if (clusterOk()) return CLUSTER_URL;
  for (const port of CLUSTER_PORTS) {
    await ensureRedisServer(port, ['--cluster-enabled', 'yes', '--cluster-config-file', `nodes-${port}.conf`, '--cluster-node-timeout', '5000']);
  }
  const known = Number(/cluster_known_nodes:(\d+)/.exec(redisCli(CLUSTER_PORTS[0], 'cluster', 'info'))?.[1] ?? 0);
  if (known < CLUSTER_PORTS.length) {
    try {
      execFileSync('redis-cli', ['--cluster', 'create', ...CLUSTER_PORTS.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (err) {
      // Another test run may be creating it at this moment; the wait below tells.
      if (!String((err as { stdout?: string }).stdout ?? '').includes('is not empty')) throw err;
    }
  }
  await waitUntil(async () => clusterOk(), 'the Redis Cluster on ports 7001–7003 to reach cluster_state:ok', 30_000);
  return CLUSTER_URL;
}

function clusterOk(): boolean {
  try {
    return CLUSTER_PORTS.every((port) => redisCli(port, 'cluster', 'info').includes('cluster_state:ok'));
  } catch {
    return false;
  }
}

/** Deletes every key under `prefix` on every master of the test cluster. */
export async function removeClusterPrefix(prefix: string): Promise<void> {
  const cluster = new Cluster([{ host: '127.0.0.1', port: 7001 }]);
  try {
    for (const node of cluster.nodes('master')) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) await node.unlink(key);
      } while (cursor !== '0');
    }
  } finally {
    cluster.disconnect();
  }
}
