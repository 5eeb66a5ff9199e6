import { createApp, type App } from '@celeriac/core';
import { afterEach, describe, expect, it } from 'vitest';
import { parseDashboardOptions } from './options.js';
import { HttpError } from './respond.js';
import { ROUTES } from './routes.js';
import { Sampler } from './sampler.js';

// Routes called directly over a real in-memory app, with a sampler whose reads fail.
let app: App | undefined;
let sampler: Sampler | undefined;

afterEach(async () => {
  sampler?.close();
  await app?.close();
});

describe('pause', () => {
  it('while the sampler cannot read, pausing a queue the registry knows still works (not a 503); one nothing knows is a 404', async () => {
    app = createApp({ broker: `memory://routes-${Math.random().toString(36).slice(2)}` });
    const settings = parseDashboardOptions({});
    sampler = new Sampler(app, settings);
    sampler.current = () => Promise.reject(new HttpError(503, 'UNAVAILABLE', 'the broker or store cannot be read'));
    await app.control.pause('known');
    const pause = ROUTES.find((r) => r.method === 'POST' && r.path.join('/') === 'queues/:queue/pause')!;
    const run = (queue: string) => pause.run({ app: app!, sampler: sampler!, settings, params: { queue }, query: new URLSearchParams(), body: {} });
    await expect(run('known')).resolves.toEqual({ queue: 'known', paused: true });
    await expect(run('unknown')).rejects.toMatchObject({ status: 404 });
  });
});
