import { describe, expect, it } from 'vitest';
import { CHROMIUM_MISSING } from './support/browser.js';
import { BROWSER_TEST_MS, POLL, XSS, byTestId, dashboardInChromium, row, text, textNow } from './support/dashboard-browser.js';

// The dashboard's pages in real Chromium, against the real server on Redis, Redis Cluster and
// RabbitMQ with a Redis store: what a person sees and clicks on each broker, checked against what
// the brokers say. Without /usr/bin/chromium every test skips, saying what to install. Every run
// saves screenshots of the overview and a failed task's page per broker in .cache/screenshots/
// (gitignored). The pages' other behaviours, on Redis: dashboard-browser-pages.test.ts.

const { BACKENDS, open, setup, saveScreenshot, expectInert } = dashboardInChromium('dash-ui');

describe.skipIf(CHROMIUM_MISSING !== null)(CHROMIUM_MISSING === null ? 'the dashboard in Chromium' : `the dashboard in Chromium (skipped: ${CHROMIUM_MISSING})`, () => {
  describe.each(BACKENDS)('on $name', ({ name, options }) => {

    it('the overview lists a queue, and its counts follow enqueues without a reload', { timeout: BROWSER_TEST_MS }, async () => {
      const { queue, job, url } = await setup(options());
      await job.enqueue({ note: 'first' });
      const page = await open(url);
      await expect.poll(() => textNow(row(page, queue).getByTestId('queue-ready')), POLL).toBe('1');
      const loaded = await page.evaluate(() => performance.timeOrigin);
      await job.enqueueMany([{ payload: { note: 'a' } }, { payload: { note: 'b' } }]);
      await expect.poll(() => textNow(row(page, queue).getByTestId('queue-ready')), POLL).toBe('3');
      expect(await page.evaluate(() => performance.timeOrigin)).toBe(loaded); // the same page, not reloaded
      await saveScreenshot(page, `overview-${name}`);
      await row(page, queue).getByTestId('queue-link').click();
      await expect.poll(() => text(page, 'queue-name'), POLL).toBe(queue);
      expect(new URL(page.url()).pathname).toBe(`/queues/${queue}`);
    });

    it('a failed task page shows its payload, error and stack as text (an HTML payload is inert)', { timeout: BROWSER_TEST_MS }, async () => {
      const { queue, job, startWorker, url } = await setup(options());
      await startWorker();
      const handle = await job.enqueue({ note: XSS, fail: true });
      await expect(handle.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
      const page = await open(`${url}tasks/${handle.id}`);
      await expect.poll(() => text(page, 'task-state'), POLL).toBe('failed');
      expect(await text(page, 'task-name')).toBe('dash.job');
      expect(await text(page, 'task-queue')).toBe(queue);
      expect(JSON.parse(await text(page, 'task-payload'))).toEqual({ note: XSS, fail: true });
      expect(await text(page, 'task-error-message')).toBe(`job failed: ${XSS}`);
      expect(await text(page, 'task-stack')).toMatch(/^Error: job failed: <img[\s\S]*\n\s+at /);
      expect(await text(page, 'task-worker')).not.toBe('—');
      await expectInert(page);
      await saveScreenshot(page, `task-${name}`);
      // A deep link survives a reload.
      await page.reload();
      await expect.poll(() => text(page, 'task-state'), POLL).toBe('failed');
    });

  });

  // The queue page's actions and the task page's revoke, on every broker.
  describe.each(BACKENDS)('on $name', ({ name, options }) => {
    it('with a token, "show all" lists every dead letter in the page, past the 20 of the queue view', { timeout: BROWSER_TEST_MS }, async () => {
      const { queue, job, startWorker, url } = await setup(options(), () => ({ token: 's3cret-token' }));
      await startWorker();
      const handles = await job.enqueueMany(Array.from({ length: 22 }, (_, i) => ({ payload: { note: `dies ${i}`, fail: true } })));
      await Promise.all(handles.map((h) => expect(h.result({ timeoutMs: 20_000 })).rejects.toMatchObject({ state: 'failed' })));
      const page = await open(`${url}queues/${queue}`);
      await byTestId(page, 'token-input').fill('s3cret-token');
      await byTestId(page, 'token-submit').click();
      await expect.poll(() => text(page, 'count-dead'), POLL).toBe('22'); // (RabbitMQ may bury a letter just after its failure is stored)
      const rows = page.getByTestId('dead-row');
      await expect.poll(() => rows.count(), POLL).toBe(20);
      expect(await text(page, 'dead-more')).toBe(`Showing the ${name.startsWith('amqp') ? 'oldest' : 'newest'} 20 of 22.`); // RabbitMQ reads its dead letters from the head
      await byTestId(page, 'dead-show-all').click(); // fetched by the page, with its token (a raw API link would answer 401)
      await expect.poll(() => rows.count(), POLL).toBe(22);
      expect(await byTestId(page, 'dead-more').count()).toBe(0);
      expect(new Set(await rows.evaluateAll((els) => els.map((el) => el.getAttribute('data-id'))))).toEqual(new Set(handles.map((h) => h.id)));
      await byTestId(page, 'dead-show-all').click();
      await expect.poll(() => rows.count(), POLL).toBe(20);
    });

    it('a dead letter redriven from its button runs again and succeeds; its error shows as text', { timeout: BROWSER_TEST_MS }, async () => {
      const { app, queue, job, startWorker, url } = await setup(options());
      await startWorker();
      const handle = await job.enqueue({ note: XSS, fail: true });
      await expect(handle.result({ timeoutMs: 10_000 })).rejects.toMatchObject({ state: 'failed' });
      const page = await open(`${url}queues/${queue}`);
      const letter = page.locator(`[data-testid="dead-row"][data-id="${handle.id}"]`);
      await expect.poll(() => textNow(letter), POLL).toContain(`job failed: ${XSS}`);
      expect(await textNow(letter.getByTestId('dead-error'))).toBe(`Error: job failed: ${XSS}`); // on RabbitMQ with a store apart too
      await expectInert(page);
      await letter.getByTestId('redrive-one').click();
      await expect.poll(() => text(page, 'action-notice'), POLL).toBe('Redrove 1 task.');
      await expect.poll(async () => (await app.inspect.task(handle.id, { queue }))?.state, POLL).toBe('succeeded');
      await expect.poll(() => letter.count(), POLL).toBe(0);
      // Its page now: succeeded, and the payload not kept for a success (keepPayload's default), said in words.
      await page.goto(`${url}tasks/${handle.id}`);
      await expect.poll(() => text(page, 'task-state'), POLL).toBe('succeeded');
      expect(await text(page, 'task-payload')).toContain('Not kept for succeeded tasks');
    });

    it('pause and resume from the queue page', { timeout: BROWSER_TEST_MS }, async () => {
      const { app, queue, job, url } = await setup(options());
      await job.enqueue({ note: 'waiting' });
      const page = await open(`${url}queues/${queue}`);
      await byTestId(page, 'pause').click();
      await expect.poll(() => app.control.paused(), POLL).toContain(queue);
      await expect.poll(() => byTestId(page, 'queue-paused').count(), POLL).toBe(1);
      await byTestId(page, 'resume').click();
      await expect.poll(() => app.control.paused(), POLL).not.toContain(queue);
      await expect.poll(() => byTestId(page, 'queue-paused').count(), POLL).toBe(0);
      await expect.poll(() => byTestId(page, 'pause').count(), POLL).toBe(1);
    });

    it('revoke and terminate a running task from its page, after confirming', { timeout: BROWSER_TEST_MS }, async () => {
      const { app, queue, job, startWorker, url } = await setup(options());
      await startWorker();
      const handle = await job.enqueue({ note: 'long', hold: true });
      await expect.poll(async () => (await app.inspect.task(handle.id, { queue }))?.state, POLL).toBe('active');
      const page = await open(`${url}tasks/${handle.id}`);
      await expect.poll(() => text(page, 'task-state'), POLL).toBe('active');
      await byTestId(page, 'revoke-terminate').click();
      await byTestId(page, 'confirm-cancel').click(); // asks first; cancelling changes nothing
      expect(await byTestId(page, 'confirm-dialog').count()).toBe(0);
      expect((await app.inspect.task(handle.id, { queue }))?.revoked).toBeNull();
      await byTestId(page, 'revoke-terminate').click();
      await byTestId(page, 'confirm-yes').click();
      await expect.poll(async () => (await app.inspect.task(handle.id, { queue }))?.state, POLL).toBe('revoked');
      await expect.poll(() => text(page, 'task-state'), POLL).toBe('revoked');
      expect(await byTestId(page, 'revoke').count()).toBe(0); // no action on a finished task
    });
  });
});
