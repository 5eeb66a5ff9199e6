import { describe, expect, it } from 'vitest';
import { encodeMessage, isPlainEnvelope, parseMessage, taskMessageSchema } from './envelope.js';
import { makeMessage } from './testing/messages.js';

// The fast path may only say yes where the schema says yes and returns the message unchanged.
const VALUES: unknown[] = [undefined, null, 0, -0, 1, 2, 9, 10, -1, 1.5, NaN, Infinity, 2 ** 53, '', 'a', 'a'.repeat(129), 'a'.repeat(201), 'a'.repeat(513), 'x y', 'a:b', '.a', {}, [], { traceId: 'a' }, { name: 'E', message: 'm' }, true];

function agreesWithSchema(m: unknown): void {
  const zod = taskMessageSchema.safeParse(m);
  if (isPlainEnvelope(m)) {
    expect(zod.success).toBe(true);
    expect(zod.data).toEqual(m);
    expect(Object.keys(zod.data!).sort()).toEqual(Object.keys(m as object).sort());
  }
}

describe('envelope fast path', () => {
  it('accepts the plain messages a task builds', () => {
    const m = makeMessage('q1');
    expect(isPlainEnvelope(m)).toBe(true);
    expect(isPlainEnvelope(JSON.parse(JSON.stringify(m)))).toBe(true);
    agreesWithSchema(m);
  });

  it('never accepts what the schema rejects or would change, field by field', () => {
    const base = JSON.parse(JSON.stringify({ ...makeMessage('q1'), idempotencyKey: 'k', trace: { traceId: 't', parentId: 'p' } })) as Record<string, unknown>;
    let accepted = 0;
    for (const key of [...Object.keys(base), 'extra']) {
      for (const value of VALUES) {
        const m = { ...base, [key]: value };
        agreesWithSchema(m);
        if (isPlainEnvelope(m)) accepted++;
      }
    }
    for (const key of Object.keys(base)) {
      const without = { ...base };
      delete without[key];
      expect(isPlainEnvelope(without)).toBe(false);
    }
    for (const trace of [{ traceId: 'a'.repeat(128) }, { traceId: 'a'.repeat(129) }, { other: 'x' }, { traceId: 1 }, { traceId: undefined }, Object.create({ traceId: 'a' })]) agreesWithSchema({ ...base, trace });
    expect(accepted).toBeGreaterThan(20); // the loop did exercise the yes side
    expect(isPlainEnvelope(Object.assign(Object.create({ x: 1 }), base))).toBe(false);
    expect(isPlainEnvelope(null)).toBe(false);
    expect(isPlainEnvelope([base])).toBe(false);
  });
});

describe('message size limit', () => {
  it('refuses to encode a message over maxBytes, naming the task, the sizes and the fix', () => {
    const m = makeMessage('q1', { task: 'media.upload', payload: { blob: 'é'.repeat(600) } });
    const bytes = Buffer.byteLength(JSON.stringify(m));
    expect(encodeMessage(m, bytes)).toBe(JSON.stringify(m));
    expect(() => encodeMessage(m, bytes - 1)).toThrow(new RegExp(`message too large: task "media.upload" \\(id ${m.id}\\) encodes to ${bytes} bytes, over the limit of ${bytes - 1} \\(maxMessageBytes\\); pass a reference`));
    expect(() => encodeMessage(m, bytes - 1)).toThrow(expect.objectContaining({ name: 'ValidationError', code: 'INVALID_MESSAGE' }));
    expect(encodeMessage(m)).toBe(JSON.stringify(m));
  });

  it('measures UTF-8 bytes on arrival too, with the same limit name', () => {
    const raw = JSON.stringify(makeMessage('q1', { payload: { blob: 'é'.repeat(600) } }));
    const bytes = Buffer.byteLength(raw);
    expect(bytes).toBeGreaterThan(raw.length);
    expect(parseMessage(raw, { maxBytes: bytes }).ok).toBe(true);
    expect(parseMessage(raw, { maxBytes: bytes - 1 })).toEqual({ ok: false, reason: `oversized message: ${bytes} bytes, over the limit of ${bytes - 1} (maxMessageBytes)` });
  });
});
