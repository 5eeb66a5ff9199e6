import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { StaticFiles } from './static.js';

/** What a handler wrote: enough of a ServerResponse for the file server. */
function capture() {
  const out = { status: 0, headers: {} as Record<string, unknown>, body: '' };
  const res = {
    writeHead: (status: number, headers: Record<string, unknown>) => Object.assign(out, { status, headers }),
    end: (body?: Buffer) => void (out.body = body?.toString() ?? ''),
  } as unknown as ServerResponse;
  return { res, out };
}

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

function uiDir(files: Record<string, string>): URL {
  const dir = mkdtempSync(join(tmpdir(), 'celeriac-ui-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return pathToFileURL(`${dir}/`);
}

describe('StaticFiles', () => {
  it('fills <base href> with the mount path, HTML-escaped, and reads the file again once it changed', async () => {
    const dir = uiDir({ 'index.html': '<base href="%BASE%"><p>%BASE%</p>' });
    const files = new StaticFiles(dir);
    const { res, out } = capture();
    await files.servePage(res, '/admin/"x"<y>');
    expect(out).toMatchObject({ status: 200, body: '<base href="/admin/&#34;x&#34;&#60;y&#62;/"><p>/admin/&#34;x&#34;&#60;y&#62;/</p>' });
    expect(out.headers['Cache-Control']).toBe('no-store');
    writeFileSync(new URL('index.html', dir), '<base href="%BASE%"> rebuilt');
    const again = capture();
    await files.servePage(again.res, '');
    expect(again.out.body).toBe('<base href="/"> rebuilt');
  });

  it('a UI that is not built is a 500 that says to build it', async () => {
    const files = new StaticFiles(uiDir({}));
    await expect(files.servePage(capture().res, '')).rejects.toMatchObject({ status: 500, message: expect.stringMatching(/the dashboard UI is not built .*: run npm run build/) });
    await expect(files.serveAsset({ headers: {} } as never, capture().res, '/assets/app.js')).rejects.toMatchObject({ status: 500 });
  });
});
