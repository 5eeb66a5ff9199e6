/** Small pieces every page uses: state badges, count tiles, tables, times, JSON blocks, banners. */
import { html } from 'htm/preact';
import type { ComponentChildren } from 'preact';
import type { ApiFailure } from '../api.ts';
import { count, json, relative, timestamp } from '../format.ts';

/** A task state (or `paused`) as a coloured badge: green succeeded, red failed, amber waiting again, blue running, grey revoked. */
export function StateBadge({ state, testid }: { state: string; testid?: string }) {
  return html`<span class=${`badge state-${state.replace(/[^a-z_]/g, '')}`} data-testid=${testid}>${state}</span>`;
}

export interface Tile {
  label: string;
  value: number;
  /** A colour class when the value is worth noticing (e.g. dead > 0). */
  tone?: 'ok' | 'bad' | 'warn' | 'run' | null;
  testid?: string;
}

export function Tiles({ tiles }: { tiles: Tile[] }) {
  return html`<div class="tiles">
    ${tiles.map(
      (t) => html`<div class=${`tile${t.tone ? ` tone-${t.tone}` : ''}`}>
        <div class="tile-label">${t.label}</div>
        <div class="tile-value num" data-testid=${t.testid}>${count(t.value)}</div>
      </div>`,
    )}
  </div>`;
}

/** A table that scrolls sideways inside its own box on narrow screens, never the page; just the `empty` sentence when there are no rows. */
export function Table({ head, children, testid, empty }: { head: (string | [string, 'num'])[]; children: ComponentChildren; testid?: string; empty?: string | null }) {
  if (empty) return html`<p class="empty" data-testid=${testid}>${empty}</p>`;
  return html`<div class="table-wrap">
    <table data-testid=${testid}>
      <thead>
        <tr>
          ${head.map((h) => (Array.isArray(h) ? html`<th class="num">${h[0]}</th>` : html`<th>${h}</th>`))}
        </tr>
      </thead>
      <tbody>
        ${children}
      </tbody>
    </table>
  </div>`;
}

/** A time relative to now, its exact local time in the tooltip. */
export function When({ at, testid }: { at: number | null | undefined; testid?: string }) {
  if (at === null || at === undefined) return html`<span class="muted">—</span>`;
  return html`<time datetime=${new Date(at).toISOString()} title=${timestamp(at)} data-testid=${testid}>${relative(at)}</time>`;
}

export function JsonBlock({ value, testid }: { value: unknown; testid?: string }) {
  return html`<pre class="json" data-testid=${testid}>${json(value)}</pre>`;
}

export function Section({ title, count: n, children, actions, testid }: { title: string; count?: number | null; children: ComponentChildren; actions?: ComponentChildren; testid?: string }) {
  return html`<section class="panel" data-testid=${testid}>
    <header class="panel-head">
      <h2>${title}${n !== undefined && n !== null ? html` <span class="count num">${count(n)}</span>` : null}</h2>
      ${actions ? html`<div class="actions">${actions}</div>` : null}
    </header>
    ${children}
  </section>`;
}

/** The API's last error, over the last data (which stays on the page). */
export function ErrorBanner({ error, stale }: { error: ApiFailure | null; stale: boolean }) {
  if (!error || error.status === 401) return null;
  return html`<div class="banner banner-error" role="alert" data-testid="error-banner">
    <strong>${error.status === 0 ? 'Offline' : `Error ${error.status}`}</strong>
    <span>${error.message}</span>
    ${stale ? html`<span class="muted">Showing the last data received; retrying every second.</span>` : null}
  </div>`;
}

/** A page before its first answer: loading, or the error that kept it from loading. */
export function NoDataYet({ error }: { error: ApiFailure | null }) {
  return error ? html`<${ErrorBanner} error=${error} stale=${false} />` : html`<p class="loading" data-testid="loading">Loading…</p>`;
}

export function NotFound({ what }: { what: string }) {
  return html`<div class="panel empty-page" data-testid="not-found"><h2>Not found</h2><p>${what}</p><p><a href="./">Back to the overview</a></p></div>`;
}
