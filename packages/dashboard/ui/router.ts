/**
 * Client-side routes on the History API, relative to the page's <base href> (the server fills it
 * with its mount prefix), so `/admin/queues/emails` deep-links and reloads under any prefix.
 * 1. Parses the current location into a Route.
 * 2. Follows same-app link clicks without a reload (plain <a href> relative to the base).
 * 3. Tells subscribers when the route changes (links, back/forward, navigate()).
 */
import { useEffect, useState } from 'preact/hooks';

export type Route =
  | { page: 'overview' }
  | { page: 'queue'; queue: string }
  | { page: 'task'; id: string; queue: string | null }
  | { page: 'workers' }
  | { page: 'schedules' }
  | { page: 'missing'; path: string };

/** The base path, ending with '/': where the dashboard is mounted. */
function basePath(): string {
  return new URL(document.baseURI).pathname;
}

function decode(segment: string): string | null {
  try {
    return decodeURIComponent(segment);
  } catch {
    return null;
  }
}

export function parseRoute(pathname: string, search: string): Route {
  const base = basePath();
  // The mount URL without its trailing slash (`/admin/queues` for the base `/admin/queues/`) is the root too.
  const rest = pathname.startsWith(base) ? pathname.slice(base.length) : pathname === base.slice(0, -1) ? '' : pathname.replace(/^\//, '');
  const parts = rest.split('/').filter((p) => p !== '');
  const [first, second] = parts;
  if (parts.length === 0) return { page: 'overview' };
  if (parts.length === 1 && first === 'workers') return { page: 'workers' };
  if (parts.length === 1 && first === 'schedules') return { page: 'schedules' };
  const name = second === undefined ? null : decode(second);
  if (parts.length === 2 && first === 'queues' && name) return { page: 'queue', queue: name };
  if (parts.length === 2 && first === 'tasks' && name) return { page: 'task', id: name, queue: new URLSearchParams(search).get('queue') };
  return { page: 'missing', path: rest };
}

/** Hrefs relative to the base: `href.queue('a b')` → `queues/a%20b`. */
export const href = {
  overview: () => './',
  queue: (queue: string) => `queues/${encodeURIComponent(queue)}`,
  task: (id: string, queue?: string | null) => `tasks/${encodeURIComponent(id)}${queue ? `?queue=${encodeURIComponent(queue)}` : ''}`,
  workers: () => 'workers',
  schedules: () => 'schedules',
};

const listeners = new Set<() => void>();
const changed = () => {
  for (const listener of listeners) listener();
};

/** Goes to an href relative to the base, keeping the page (pushState). */
export function navigate(to: string): void {
  const url = new URL(to, document.baseURI);
  history.pushState(null, '', url.pathname + url.search);
  window.scrollTo(0, 0);
  changed();
}

function isAppLink(event: MouseEvent): URL | null {
  if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return null;
  const anchor = event.target instanceof Element ? event.target.closest('a') : null;
  if (!anchor || anchor.target || anchor.hasAttribute('download')) return null;
  const url = new URL(anchor.href, document.baseURI);
  if (url.origin !== location.origin || !url.pathname.startsWith(basePath())) return null;
  return url;
}

/** Installs the link and back/forward handlers once; returns the current route, re-rendering on change. */
export function useRoute(): Route {
  const read = () => parseRoute(location.pathname, location.search);
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const update = () => setRoute(read());
    const onClick = (event: MouseEvent) => {
      const url = isAppLink(event);
      if (!url) return;
      event.preventDefault();
      navigate(url.pathname + url.search);
    };
    listeners.add(update);
    window.addEventListener('popstate', update);
    document.addEventListener('click', onClick);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
      document.removeEventListener('click', onClick);
    };
  }, []);
  return route;
}
