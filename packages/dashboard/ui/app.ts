/**
 * The page shell:
 * 1. Reads /api/info once (retrying while the server cannot answer) for the refresh period and
 *    what this broker can do.
 * 2. Asks for the token when the server wants one (a 401), once: it is kept for the session.
 * 3. Draws the navigation (with the task search) and the page of the current route.
 */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import type { Info } from '../src/api.ts';
import { api, ApiFailure, hasToken, onTokenNeeded, setToken } from './api.ts';
import { NoDataYet, NotFound } from './parts/common.ts';
import { OverviewPage } from './pages/overview.ts';
import { QueuePage } from './pages/queue.ts';
import { SchedulesPage } from './pages/schedules.ts';
import { TaskPage } from './pages/task.ts';
import { WorkersPage } from './pages/workers.ts';
import { href, navigate, useRoute, type Route } from './router.ts';

const INFO_RETRY_MS = 2_000;

function TokenForm({ refused, onToken }: { refused: boolean; onToken: (token: string) => void }) {
  const [value, setValue] = useState('');
  const submit = (event: Event) => {
    event.preventDefault();
    if (value.trim() !== '') onToken(value.trim());
  };
  return html`<form class="panel token-form" data-testid="token-form" onSubmit=${submit}>
    <h1>Token needed</h1>
    <p>This dashboard is protected by a token (<code>--token</code> or <code>CELERIAC_DASHBOARD_TOKEN</code> where it was started). It is kept for this browser tab only.</p>
    ${refused ? html`<p class="tone-bad" data-testid="token-refused">The server refused that token.</p>` : null}
    <label for="token-input">Token</label>
    <div class="token-row">
      <input id="token-input" type="password" autocomplete="off" data-testid="token-input" value=${value} onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} />
      <button type="submit" class="btn btn-primary" data-testid="token-submit">Open</button>
    </div>
  </form>`;
}

function Search() {
  const [value, setValue] = useState('');
  const submit = (event: Event) => {
    event.preventDefault();
    const id = value.trim();
    if (id === '') return;
    setValue('');
    navigate(href.task(id));
  };
  return html`<form class="search" role="search" onSubmit=${submit}>
    <input type="search" placeholder="Open a task by id" aria-label="Task id" data-testid="task-search" value=${value} onInput=${(e: Event) => setValue((e.target as HTMLInputElement).value)} />
  </form>`;
}

function Nav({ route, info }: { route: Route; info: Info | null }) {
  const link = (to: string, label: string, active: boolean, testid: string) => html`<a href=${to} class=${active ? 'active' : ''} aria-current=${active ? 'page' : undefined} data-testid=${testid}>${label}</a>`;
  return html`<header class="topbar">
    <nav>
      <a class="brand" href=${href.overview()}><span class="brand-mark" aria-hidden="true"></span>celeriac</a>
      <div class="nav-links">
        ${link(href.overview(), 'Overview', route.page === 'overview' || route.page === 'queue', 'nav-overview')}
        ${link(href.workers(), 'Workers', route.page === 'workers', 'nav-workers')}
        ${link(href.schedules(), 'Schedules', route.page === 'schedules', 'nav-schedules')}
      </div>
      ${info?.control ? html`<${Search} />` : null}
    </nav>
  </header>`;
}

function Unavailable({ info, what }: { info: Info; what: string }) {
  return html`<div class="panel empty-page" data-testid="control-unavailable"><h2>${what} are not available here</h2><p>${info.controlHint ?? 'This broker keeps no shared state.'}</p></div>`;
}

function Page({ route, info }: { route: Route; info: Info }) {
  switch (route.page) {
    case 'overview':
      return html`<${OverviewPage} info=${info} />`;
    case 'queue':
      return html`<${QueuePage} key=${route.queue} info=${info} queue=${route.queue} />`;
    case 'task':
      return info.control ? html`<${TaskPage} key=${route.id} info=${info} id=${route.id} queue=${route.queue} />` : html`<${Unavailable} info=${info} what="Task lookups" />`;
    case 'workers':
      return info.control ? html`<${WorkersPage} info=${info} />` : html`<${Unavailable} info=${info} what="Workers" />`;
    case 'schedules':
      return info.control ? html`<${SchedulesPage} info=${info} />` : html`<${Unavailable} info=${info} what="Schedules" />`;
    case 'missing':
      return html`<${NotFound} what=${`No page at ${route.path}.`} />`;
  }
}

export function App() {
  const route = useRoute();
  const [info, setInfo] = useState<Info | null>(null);
  const [infoError, setInfoError] = useState<ApiFailure | null>(null);
  const [tokenWanted, setTokenWanted] = useState<{ refused: boolean } | null>(null);
  const [attempt, setAttempt] = useState(0);

  useEffect(() => onTokenNeeded(() => setTokenWanted({ refused: hasToken() })), []);
  useEffect(() => {
    if (info) return;
    let stopped = false;
    let timer: number | undefined;
    api
      .get<Info>('api/info')
      .then((got) => !stopped && (setInfo(got), setInfoError(null)))
      .catch((err: unknown) => {
        if (stopped) return;
        const failure = err instanceof ApiFailure ? err : new ApiFailure(0, 'INTERNAL', String(err));
        setInfoError(failure);
        if (failure.status !== 401) timer = window.setTimeout(() => setAttempt((n) => n + 1), INFO_RETRY_MS);
      });
    return () => {
      stopped = true;
      window.clearTimeout(timer);
    };
  }, [info, attempt]);

  const onToken = (token: string) => {
    setToken(token);
    setTokenWanted(null);
    setAttempt((n) => n + 1);
  };

  let body;
  if (tokenWanted) body = html`<${TokenForm} refused=${tokenWanted.refused} onToken=${onToken} />`;
  else if (!info) body = html`<${NoDataYet} error=${infoError} />`;
  else body = html`<${Page} route=${route} info=${info} />`;

  return html`<${Nav} route=${route} info=${info} />
    <main>
      ${info && !info.control && html`<div class="banner banner-warn" data-testid="control-banner"><strong>Counts and dead letters only.</strong> <span>${info.controlHint}</span></div>`}
      ${body}
    </main>
    <footer class="footer">
      ${info && html`<span>celeriac ${info.version}</span> <span class="mono" data-testid="broker-url">${info.broker}</span>${info.results ? html` <span class="mono">results ${info.results}</span>` : null}`}
    </footer>`;
}
