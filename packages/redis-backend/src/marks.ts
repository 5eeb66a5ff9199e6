import type { MarkStore } from '@celeriac/core';
import type { Client, Scripts } from './scripts.js';

/**
 * Durable named marks (the scheduler's last-run times) in one hash, `<prefix>:marks`.
 * Each operation touches that one key, so it works unchanged on Redis Cluster.
 */
export class RedisMarks implements MarkStore {
  readonly #key: string;

  constructor(
    private readonly client: Client,
    private readonly scripts: Scripts,
    prefix: string,
  ) {
    this.#key = `${prefix}:marks`;
  }

  async getMark(name: string): Promise<number | null> {
    const value = await this.client.hget(this.#key, name);
    return value === null ? null : Number(value);
  }

  async advanceMark(name: string, at: number): Promise<number> {
    return Number(await this.scripts.run('advance-mark', [this.#key], [name, Math.floor(at)]));
  }
}
