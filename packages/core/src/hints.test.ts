import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createApp } from './app.js';
import { connectBroker } from './connect.js';

// The first-hour mistakes: each error names the fix, not only the problem.
describe('errors that suggest the fix', () => {
  it('guesses the URL when the scheme is missing', async () => {
    await expect(connectBroker('localhost:6379')).rejects.toThrow('broker: "localhost:6379" has no scheme; did you mean "redis://localhost:6379"?');
    await expect(connectBroker('127.0.0.1:5672')).rejects.toThrow('"127.0.0.1:5672" has no scheme; did you mean "amqp://127.0.0.1:5672"?');
    await expect(connectBroker('queue.internal')).rejects.toThrow('did you mean "redis://queue.internal" or "amqp://queue.internal"?');
    // The password never appears in the message, not even in the suggestion.
    const err = await connectBroker('worker:s3cret@cache:6379').catch((e: Error) => e);
    expect(String(err)).toContain('did you mean "redis://worker:***@cache:6379"?');
    expect(String(err)).not.toContain('s3cret');
    // A real scheme that we do not support is still called by its name.
    await expect(connectBroker('kafka://broker:9092')).rejects.toThrow('unsupported scheme kafka://');
  });

  it('suggests z.coerce.date() when a Date meets z.date() after the JSON round trip', async () => {
    const app = createApp({ broker: 'memory://' });
    const strict = app.task('hints.strict', { input: z.object({ at: z.date() }) }, async () => null);
    await expect(strict.enqueue({ at: new Date() })).rejects.toThrow(/at: .*use z\.coerce\.date\(\) to get a Date back in the handler, or z\.iso\.datetime\(\) to keep the string/);
    const coerced = app.task('hints.coerced', { input: z.object({ at: z.coerce.date() }) }, async ({ at }) => at.toISOString());
    const { broker } = await app.connection();
    await coerced.enqueue({ at: new Date(0) });
    const [delivery] = await broker.fetch({ queues: ['default'], max: 1, leaseMs: 30_000, waitMs: 0 });
    expect(delivery?.message.payload).toEqual({ at: '1970-01-01T00:00:00.000Z' });
    expect(coerced.input.parse(delivery?.message.payload)).toEqual({ at: new Date(0) });
    await app.close();
  });
});
