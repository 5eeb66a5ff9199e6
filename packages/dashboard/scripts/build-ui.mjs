// placeholder until the UI lands: writes an empty bundle so the build step exists
import { mkdirSync, writeFileSync } from 'node:fs';
const out = new URL('../dist/ui/', import.meta.url);
mkdirSync(out, { recursive: true });
writeFileSync(new URL('app.js', out), '');
