import { DEAD_LETTER_NOT_FOUND, DEAD_LETTER_QUEUED, MAX_PEEK_BYTES, redriveMessage, type BrokerOptions, type DeadLetter, type RedriveResult } from '@celeriac/core';
import type { QueueKeys } from './keys.js';
import type { Client, Scripts } from './scripts.js';

/** Letters per redrive script call (each carries its whole new message). */
const REDRIVE_CHUNK = 100;
/** Ids per discard script call. */
const DISCARD_CHUNK = 1_000;
/** Messages a purge call takes from each ready list and from the delayed set (11 places). */
const PURGE_CHUNK = 200;
/** 10,000 rounds of 200: two million tasks per purge call at most. */
const MAX_PURGE_ROUNDS = 10_000;

/**
 * The operator's side of a Redis queue's dead letters (rules 8-10 of the Broker contract).
 * 1. Lists them, newest `limit` within `MAX_PEEK_BYTES`, after applying retention (lua/dead-letters-2.lua).
 * 2. Redrives: reads the letters, has core build each fresh message (`redriveMessage`: parsing and
 *    the attempt/lastError rule live there), then moves them in one script call per chunk, so each
 *    letter leaves the dead letters and is queued in the same atomic step (lua/redrive-7.lua).
 * 3. Discards by id and purges ready + delayed messages, in bounded script calls.
 */
export class DeadLetters {
  constructor(
    private readonly client: Client,
    private readonly scripts: Scripts,
    private readonly options: BrokerOptions,
  ) {}

  async list(keys: QueueKeys, limit: number): Promise<DeadLetter[]> {
    if (limit <= 0) return [];
    const entries = (await this.scripts.run('dead-letters', keys.dead, [...this.#retention(), Math.ceil(limit), '', MAX_PEEK_BYTES])) as string[];
    return entries.map((text) => JSON.parse(text) as DeadLetter);
  }

  /** Every letter's id (within retention), oldest first: no bodies, so no byte budget. */
  async ids(keys: QueueKeys): Promise<string[]> {
    return (await this.scripts.run('dead-letters', keys.dead, [...this.#retention(), this.options.deadLetters.maxCount, '1'])) as string[];
  }

  async redrive(keys: QueueKeys, ids?: readonly string[]): Promise<RedriveResult> {
    const out: RedriveResult = { redriven: [], refused: [] };
    const chosen = ids ?? (await this.ids(keys));
    for (let start = 0; start < chosen.length; start += REDRIVE_CHUNK) {
      await this.#redriveChunk(keys, chosen.slice(start, start + REDRIVE_CHUNK), out);
    }
    return out;
  }

  async discard(keys: QueueKeys, ids: readonly string[]): Promise<number> {
    let removed = 0;
    for (let start = 0; start < ids.length; start += DISCARD_CHUNK) {
      removed += (await this.scripts.run('discard', keys.dead, ids.slice(start, start + DISCARD_CHUNK))) as number;
    }
    return removed;
  }

  /** In chunks (each one script); bounded by MAX_PURGE_ROUNDS so a producer outpacing it cannot keep it going forever. */
  async purge(keys: QueueKeys): Promise<number> {
    let removed = 0;
    for (let round = 0; round < MAX_PURGE_ROUNDS; round++) {
      const [n, more] = (await this.scripts.run('purge', keys.main, [keys.base, PURGE_CHUNK])) as [number, number];
      removed += n;
      if (more === 0) break;
    }
    return removed;
  }

  async #redriveChunk(keys: QueueKeys, ids: string[], out: RedriveResult): Promise<void> {
    const entries = await this.client.hmget(keys.dead[1], ...ids);
    const args: (string | number)[] = [keys.base];
    const sent: string[] = [];
    ids.forEach((id, n) => {
      const entry = entries[n];
      const next = entry ? redriveMessage(JSON.parse(entry) as DeadLetter, keys.queue, this.options.maxMessageBytes) : { ok: false as const, reason: DEAD_LETTER_NOT_FOUND };
      if (!next.ok) return out.refused.push({ id, reason: next.reason });
      args.push(id, next.message.id, next.raw, next.message.priority);
      sent.push(id);
    });
    if (sent.length === 0) return;
    const codes = (await this.scripts.run('redrive', keys.main, args)) as number[];
    sent.forEach((id, n) => {
      if (codes[n] === 1) out.redriven.push(id);
      else if (codes[n] === 0) out.refused.push({ id, reason: DEAD_LETTER_NOT_FOUND });
      else out.refused.push({ id, reason: DEAD_LETTER_QUEUED });
    });
  }

  /** Dead-letter retention as script arguments (see lua/lib/dead.lua). */
  #retention(): [number, number] {
    return [this.options.deadLetters.maxCount, this.options.deadLetters.maxAgeMs];
  }
}
