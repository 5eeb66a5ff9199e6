import { createHash } from 'node:crypto';
import { BackendError, DEAD_LETTER_NOT_FOUND, parseMessage, redriveMessage, type DeadLetter, type ErrorInfo, type RedriveResult } from '@celeriac/core';
import type { Channel, GetMessage, Message } from 'amqplib';
import type { Link } from './link.js';
import { deadQueue, H } from './names.js';
import type { AmqpResults } from './results.js';
import { copyProps, type Settler } from './settler.js';

/**
 * A dead letter as read off `<queue>:dead`. Its id is the task id where the raw text is an envelope,
 * else `raw-` and a hash of the raw text and the dead-letter time: stable while the letter is kept,
 * with no header to trust (letters buried by older versions have none either).
 */
export function letterOf(msg: Message): DeadLetter {
  const headers = msg.properties.headers ?? {};
  const raw = msg.content.toString();
  const at = Number(headers[H.deadAt] ?? 0);
  return { id: idOf(raw, at), raw, reason: String(headers[H.reason] ?? ''), error: errorHeader(headers[H.error]), at };
}

/** Only the letter's id (as `letterOf` gives it): a walk for ids keeps no body. */
export function letterIdOf(msg: Message): string {
  return idOf(msg.content.toString(), Number(msg.properties.headers?.[H.deadAt] ?? 0));
}

function idOf(raw: string, at: number): string {
  const parsed = parseMessage(raw);
  return parsed.ok ? parsed.message.id : `raw-${createHash('sha256').update(`${at}\n${raw}`).digest('hex').slice(0, 24)}`;
}

/** The letter's error header; one that is not JSON (written by hand, or garbled) is kept as its text, never a reason to fail a listing. */
function errorHeader(value: unknown): ErrorInfo | null {
  if (typeof value !== 'string' || value === '') return null;
  try {
    return JSON.parse(value) as ErrorInfo;
  } catch {
    return { name: 'Error', message: value };
  }
}

/**
 * Redrive and discard on `<queue>:dead` (Broker rules 8 and 9). AMQP cannot take a message out of
 * the middle of a queue, so both read the whole dead queue on a throwaway channel with `basic.get`
 * and manual ack: a chosen letter is acked (removed) once its move is done, every other one stays
 * unacked and goes back in place when the channel closes.
 * 1. Redrive publishes the fresh message (core's `redriveMessage`) to the work queue with a confirm
 *    and only then acks the dead copy: a crash in between leaves the letter where it was AND the
 *    task queued — a duplicate, which the task-id claim in the result store absorbs (one run). It
 *    never loses a letter. The id's result in this process's store is dropped first, so the new
 *    run's outcome is stored (other processes' stores are theirs: RabbitMQ shares none).
 * 2. Every read and republish has a bound (`boundMs`, the publish timeout): a letter whose
 *    republish fails or times out stays, refused with why; a read that fails ends the walk (Link
 *    retries it on a new channel a few times, skipping letters already handled), and the channel's
 *    end hands back every letter it held and did not take.
 * 3. Letters with the same id (a task that died twice): the oldest is the one redriven or all are
 *    discarded; one redrive puts the task back once.
 */
export class DeadLetterQueue {
  constructor(
    private readonly link: Link,
    private readonly settler: Settler,
    private readonly results: AmqpResults,
    private readonly maxMessageBytes: number,
    private readonly boundMs: number,
  ) {}

  redrive(queue: string, ids?: readonly string[]): Promise<RedriveResult> {
    const out: RedriveResult = { redriven: [], refused: [] };
    const wanted = ids ? new Set(ids) : null;
    const seen = new Set<string>();
    return this.#walk(queue, async (ch, msg) => {
      const letter = letterOf(msg);
      if ((wanted && !wanted.has(letter.id)) || seen.has(letter.id)) return 'keep';
      seen.add(letter.id);
      const next = redriveMessage(letter, queue, this.maxMessageBytes);
      if (!next.ok) {
        out.refused.push({ id: letter.id, reason: next.reason });
        return 'keep';
      }
      const props = { ...copyProps(msg.properties), messageId: next.message.id, priority: next.message.priority };
      try {
        await this.#bounded(this.settler.send(queue, Buffer.from(next.raw), props, 0), `republishing dead letter ${letter.id}`);
      } catch (err) {
        // Not acked, so it stays a dead letter. A publish that timed out may still land: with a
        // shared store the task claim runs it once; on RabbitMQ alone it may run, and a second
        // redrive of the letter would run it again. The reason says so, so nobody redrives blindly.
        out.refused.push({ id: letter.id, reason: `could not confirm the republish (it may or may not be queued; check the queue before redriving it again): ${(err as Error).message}` });
        return 'keep';
      }
      // Only once it is back: a letter that stays dead keeps its outcome. An outcome newer than the
      // letter (the redriven task already ran here) is kept too.
      this.results.forgetOutcomeBefore(next.message, letter.at);
      ch.ack(msg);
      out.redriven.push(letter.id);
      return wanted && seen.size === wanted.size ? 'stop' : 'taken';
    }).then(() => {
      for (const id of ids ?? []) if (!seen.has(id)) out.refused.push({ id, reason: DEAD_LETTER_NOT_FOUND });
      return out;
    });
  }

  async discard(queue: string, ids: readonly string[]): Promise<number> {
    if (ids.length === 0) return 0;
    const wanted = new Set(ids);
    let removed = 0;
    await this.#walk(queue, async (ch, msg) => {
      if (!wanted.has(letterIdOf(msg))) return 'keep';
      ch.ack(msg);
      removed++;
      return 'taken';
    });
    return removed;
  }

  /** Reads each letter once (as many as the queue held when the walk began) and lets `visit` decide. */
  async #walk(queue: string, visit: (ch: Channel, msg: GetMessage) => Promise<'keep' | 'taken' | 'stop'>): Promise<void> {
    const name = deadQueue(queue);
    try {
      await this.link.withChannel(async (ch) => {
        const { messageCount } = await this.#bounded(ch.checkQueue(name), `reading ${name}`);
        for (let n = 0; n < messageCount; n++) {
          const msg = await this.#bounded(ch.get(name, { noAck: false }), `reading ${name}`);
          if (!msg || (await visit(ch, msg)) === 'stop') return;
        }
      });
    } catch (err) {
      if (/NOT_FOUND|404/.test(String((err as Error).message))) return; // no dead queue: no letters
      throw err;
    }
  }

  #bounded<T>(work: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new BackendError(`${what}: RabbitMQ did not answer within ${this.boundMs} ms; letters not yet moved stay dead letters`)), this.boundMs);
    });
    return Promise.race([work, late]).finally(() => clearTimeout(timer));
  }
}
