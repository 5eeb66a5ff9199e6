/**
 * Page actions (pause, purge, redrive, revoke…):
 * 1. A destructive one asks first, in an in-page <dialog> that names what will happen.
 * 2. One action at a time per page; its buttons are disabled while it runs.
 * 3. Its outcome (the server's answer in words, or its error) shows in a notice under the header,
 *    and the page's data is polled at once.
 */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiFailure } from '../api.ts';

export interface Notice {
  kind: 'ok' | 'error';
  text: string;
}

export interface Actions {
  busy: boolean;
  notice: Notice | null;
  /** Runs an action; `fn` resolves to the sentence to show. */
  run: (fn: () => Promise<string>) => void;
}

export function useActions(after: () => void): Actions {
  const [busy, setBusy] = useState(false);
  const [notice, setNotice] = useState<Notice | null>(null);
  const run = (fn: () => Promise<string>) => {
    if (busy) return;
    setBusy(true);
    setNotice(null);
    fn()
      .then((text) => setNotice({ kind: 'ok', text }))
      .catch((err: unknown) => setNotice({ kind: 'error', text: err instanceof ApiFailure || err instanceof Error ? err.message : String(err) }))
      .finally(() => {
        setBusy(false);
        after();
      });
  };
  return { busy, notice, run };
}

export function NoticeLine({ notice }: { notice: Notice | null }) {
  if (!notice) return null;
  return html`<div class=${`banner banner-${notice.kind}`} role="status" data-testid="action-notice">${notice.text}</div>`;
}

interface ActionButtonProps {
  label: string;
  actions: Actions;
  action: () => Promise<string>;
  testid: string;
  /** When set, asks this question in a dialog before acting. */
  confirm?: string;
  /** The dialog's confirm button (defaults to the label). */
  confirmLabel?: string;
  danger?: boolean;
  small?: boolean;
}

export function ActionButton({ label, actions, action, testid, confirm, confirmLabel, danger = false, small = false }: ActionButtonProps) {
  const [asking, setAsking] = useState(false);
  const dialog = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const el = dialog.current;
    if (asking && el && !el.open) el.showModal();
  }, [asking]);
  const classes = `btn${danger ? ' btn-danger' : ''}${small ? ' btn-small' : ''}`;
  const go = () => {
    setAsking(false);
    actions.run(action);
  };
  return html`<button type="button" class=${classes} disabled=${actions.busy} data-testid=${testid} onClick=${() => (confirm ? setAsking(true) : go())}>${label}</button>
    ${asking &&
    html`<dialog ref=${dialog} class="confirm" data-testid="confirm-dialog" onClose=${() => setAsking(false)}>
      <p>${confirm}</p>
      <div class="actions">
        <button type="button" class="btn" data-testid="confirm-cancel" onClick=${() => setAsking(false)}>Cancel</button>
        <button type="button" class=${`btn${danger ? ' btn-danger' : ' btn-primary'}`} data-testid="confirm-yes" onClick=${go}>${confirmLabel ?? label}</button>
      </div>
    </dialog>`}`;
}
