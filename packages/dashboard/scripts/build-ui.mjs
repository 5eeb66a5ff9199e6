#!/usr/bin/env node
// Builds the dashboard's browser bundle into dist/ui/: app.js (ui/main.ts and Preact, one minified
// script), app.css (minified) and index.html (as written; the server fills in its <base href>).
// Run by the root `npm run build` (so by `npm ci`), by `npm pack`, and by the browser tests before
// they start (so they test the sources as they are). Needs no network. Each file is written
// beside its place and renamed over it, so a server reading dist/ui meanwhile never sees half a file.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ui = fileURLToPath(new URL('../ui/', import.meta.url));
const out = fileURLToPath(new URL('../dist/ui/', import.meta.url));
mkdirSync(out, { recursive: true });
const staging = mkdtempSync(`${out}.build-`);

try {
  const common = { bundle: true, minify: true, target: ['chrome100', 'firefox100', 'safari15'], logLevel: 'warning', legalComments: 'none' };
  await Promise.all([
    build({ ...common, entryPoints: [`${ui}main.ts`], outfile: `${staging}/app.js`, format: 'esm', platform: 'browser', charset: 'utf8' }),
    build({ ...common, entryPoints: [`${ui}app.css`], outfile: `${staging}/app.css` }),
  ]);
  copyFileSync(`${ui}index.html`, `${staging}/index.html`);
  for (const name of ['app.js', 'app.css', 'index.html']) renameSync(`${staging}/${name}`, `${out}${name}`);
} finally {
  rmSync(staging, { recursive: true, force: true });
}
