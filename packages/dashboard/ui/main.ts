/** The dashboard's browser entry: draws the app into #app (bundled by scripts/build-ui.mjs). */
import { html, render } from 'htm/preact';
import { App } from './app.ts';

const root = document.getElementById('app');
if (root) {
  root.textContent = '';
  render(html`<${App} />`, root);
}
