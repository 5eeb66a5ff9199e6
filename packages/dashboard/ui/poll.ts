/**
 * Live data for a page: GETs one API path now and then every `refreshMs` after the last answer,
 * never while the tab is hidden (it catches up as soon as the tab shows again). An error keeps
 * the last data and is reported next to it, so a broker blip does not blank the page.
 * `refreshMs` null: loads once, and again only on `refresh()` (a large list).
 */
import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { api, ApiFailure } from './api.ts';

export interface Polled<T> {
  data: T | null;
  error: ApiFailure | null;
  /** When the last successful answer came, epoch ms (0 before the first). */
  at: number;
  /** Polls now (after an action), without waiting for the next tick. */
  refresh: () => void;
}

export function usePoll<T>(path: string | null, refreshMs: number | null): Polled<T> {
  const [state, setState] = useState<Omit<Polled<T>, 'refresh'>>({ data: null, error: null, at: 0 });
  const kick = useRef<() => void>(() => undefined);

  useEffect(() => {
    setState({ data: null, error: null, at: 0 });
    if (path === null) return;
    let stopped = false;
    let timer: number | undefined;
    let inFlight = false;
    let again = false;
    let answered = false;

    const tick = async () => {
      window.clearTimeout(timer);
      if (stopped) return;
      if (document.hidden) return; // visibilitychange resumes
      if (inFlight) {
        again = true;
        return;
      }
      inFlight = true;
      try {
        const data = await api.get<T>(path);
        if (!stopped) setState({ data, error: null, at: Date.now() });
      } catch (err) {
        const failure = err instanceof ApiFailure ? err : new ApiFailure(0, 'INTERNAL', String(err));
        if (!stopped) setState((prev) => ({ ...prev, error: failure }));
      } finally {
        inFlight = false;
        answered = true;
      }
      if (stopped) return;
      if (again) {
        again = false;
        void tick();
      } else if (refreshMs !== null) {
        timer = window.setTimeout(() => void tick(), refreshMs);
      }
    };
    const onVisibility = () => {
      if (!document.hidden && (refreshMs !== null || !answered)) void tick();
    };
    kick.current = () => void tick();
    document.addEventListener('visibilitychange', onVisibility);
    void tick();
    return () => {
      stopped = true;
      window.clearTimeout(timer);
      document.removeEventListener('visibilitychange', onVisibility);
      kick.current = () => undefined;
    };
  }, [path, refreshMs]);

  const refresh = useCallback(() => kick.current(), []);
  return { ...state, refresh };
}
