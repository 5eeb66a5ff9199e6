#!/usr/bin/env node
// Builds the dashboard's browser bundle into dist/ui/: app.js (ui/main.ts and Preact, one minified
// script), app.css (minified) and index.html (as written; the server fills in its <base href>).
// Run by the root `npm run build` (so by `npm ci`) and by `npm pack`; needs no network.
import { build } from 'esbuild';
import { copyFileSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ui = fileURLToPath(new URL('../ui/', import.meta.url));
const out = fileURLToPath(new URL('../dist/ui/', import.meta.url));
mkdirSync(out, { recursive: true });

const common = { bundle: true, minify: true, target: ['chrome100', 'firefox100', 'safari15'], logLevel: 'warning', legalComments: 'none' };
await Promise.all([
  build({ ...common, entryPoints: [`${ui}main.ts`], outfile: `${out}app.js`, format: 'esm', platform: 'browser', charset: 'utf8' }),
  build({ ...common, entryPoints: [`${ui}app.css`], outfile: `${out}app.css` }),
]);
copyFileSync(`${ui}index.html`, `${out}index.html`);
