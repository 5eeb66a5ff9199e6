import { describe, expect, it } from 'vitest';
import { DEAD_LETTER_QUEUED } from '../redrive.js';
import { collect, makeMessage, uniqueQueue } from '../testing/index.js';
import { MemoryBroker } from './broker.js';

const KEY_TTL = { keyTtlMs: 60_000 };

// A dead letter without a stored result leaves its id free to publish again, so an id can be a
// dead letter and queued at once: redrive must not queue it twice.
describe('memory: dead letters of an id that is queued again', () => {
  it('refuses to redrive a letter whose task is queued now, and a second death replaces the first letter', async () => {
    const broker = new MemoryBroker();
    const q = uniqueQueue('rr');
    const msg = makeMessage(q);
    await broker.publish([msg], KEY_TTL);
    await (await collect(broker, q, 1))[0]!.deadLetter('first death');
    expect(await broker.publish([msg], KEY_TTL)).toEqual([{ id: msg.id, duplicate: false }]);
    expect(await broker.redrive(q, { ids: [msg.id] })).toEqual({ redriven: [], refused: [{ id: msg.id, reason: DEAD_LETTER_QUEUED }] });
    expect((await broker.deadLetters(q)).map((d) => [d.id, d.reason])).toEqual([[msg.id, 'first death']]);
    await (await collect(broker, q, 1))[0]!.deadLetter('second death');
    expect((await broker.deadLetters(q)).map((d) => [d.id, d.reason])).toEqual([[msg.id, 'second death']]);
    expect((await broker.stats(q)).dead).toBe(1);
    await broker.close();
  });
});
