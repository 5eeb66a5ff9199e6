/**
 * Task `/tasks/:id`: state, attempts, payload, progress, result, last error with its stack,
 * timestamps and worker. Actions: revoke, and revoke-terminate (which aborts it if running).
 */
import { html } from 'htm/preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import type { Info, RevokeResult, TaskView } from '../../src/api.ts';
type TaskInfo = TaskView['task'];
import { api, apiPath } from '../api.ts';
import { duration, timestamp } from '../format.ts';
import { ActionButton, NoticeLine, useActions } from '../parts/actions.ts';
import { ErrorBanner, JsonBlock, NoDataYet, NotFound, Section, StateBadge, When } from '../parts/common.ts';
import { usePoll } from '../poll.ts';
import { href } from '../router.ts';

const FINAL = new Set(['succeeded', 'failed', 'expired', 'revoked']);

function Field({ label, children, testid }: { label: string; children: unknown; testid?: string }) {
  return html`<div class="field"><dt>${label}</dt><dd data-testid=${testid}>${children}</dd></div>`;
}

function Stamp({ at, testid }: { at: number | null; testid: string }) {
  return at === null ? html`<span class="muted" data-testid=${testid}>—</span>` : html`<span data-testid=${testid}>${timestamp(at)}</span><br /><span class="muted small"><${When} at=${at} /></span>`;
}

export function TaskPage({ info, id, queue }: { info: Info; id: string; queue: string | null }) {
  // Opened by id alone (the search box), the first answer names the task's queue: from then on
  // look in that queue only, as a link from a queue page does, instead of in every queue.
  const [found, setFound] = useState<string | null>(null);
  const where = queue ?? found;
  const path = `${apiPath('tasks', id)}${where ? `?queue=${encodeURIComponent(where)}` : ''}`;
  const polled = usePoll<TaskView>(path, info.refreshMs);
  const { error, refresh } = polled;
  const last = useRef<TaskView | null>(null); // shown while the narrower path's first answer comes
  if (polled.data) last.current = polled.data;
  const data = polled.data ?? last.current;
  useEffect(() => {
    if (where === null && polled.data) setFound(polled.data.task.queue);
  }, [where, polled.data]);
  const actions = useActions(refresh);
  if (!data) {
    if (error?.status === 404) return html`<${NotFound} what=${`No task with id ${id}${queue ? ` in queue ${queue}` : ''}: it may never have existed, or its result expired.`} />`;
    return html`<${NoDataYet} error=${error} />`;
  }
  const t = data.task;
  const revoke = (terminate: boolean) => async () => {
    const r = await api.post<RevokeResult>(apiPath('tasks', id, 'revoke'), { terminate, queue: t.queue });
    return r.status === 'revoked' ? `Revoked ${id}${terminate ? ' (terminating it if it runs)' : ''}.` : `Task ${id} had already finished (${r.state}); nothing changed.`;
  };
  const ran = t.startedAt !== null && t.finishedAt !== null ? duration(t.finishedAt - t.startedAt) : null;
  const error_ = t.error;
  return html`<${ErrorBanner} error=${error} stale=${true} />
    <div class="page-head">
      <h1><span class="muted">Task</span> <span class="mono break" data-testid="task-id">${t.id}</span> <${StateBadge} state=${t.state} testid="task-state" /></h1>
      ${info.control &&
      !FINAL.has(t.state) &&
      html`<div class="actions">
        <${ActionButton} label="Revoke" actions=${actions} testid="revoke" confirm=${`Revoke task ${id}? It will not run (or run again); if it is running now it finishes.`} action=${revoke(false)} />
        <${ActionButton} label="Revoke and terminate" danger=${true} actions=${actions} testid="revoke-terminate" confirm=${`Revoke task ${id} and abort it if it is running now?`} action=${revoke(true)} />
      </div>`}
    </div>
    <${NoticeLine} notice=${actions.notice} />
    ${t.revoked && html`<div class="banner banner-warn" data-testid="task-revoked">Revoked ${timestamp(t.revoked.at)}${t.revoked.terminate ? ', terminate' : ''}.</div>`}
    <section class="panel">
      <dl class="fields">
        <${Field} label="Task" testid="task-name">${t.task ?? html`<span class="muted">unknown</span>`}<//>
        <${Field} label="Queue"><a href=${href.queue(t.queue)} data-testid="task-queue">${t.queue}</a><//>
        <${Field} label="Attempt" testid="task-attempt">${t.attempt ?? '—'}${t.maxAttempts !== null ? ` of ${t.maxAttempts}` : ''}<//>
        <${Field} label="Worker" testid="task-worker">${t.worker ?? html`<span class="muted">—</span>`}<//>
        <${Field} label="Enqueued"><${Stamp} at=${t.enqueuedAt} testid="task-enqueued" /><//>
        <${Field} label="Started"><${Stamp} at=${t.startedAt} testid="task-started" /><//>
        <${Field} label="Finished"><${Stamp} at=${t.finishedAt} testid="task-finished" /><//>
        ${ran && html`<${Field} label="Ran for" testid="task-ran">${ran}<//>`}
      </dl>
    </section>
    ${error_ &&
    html`<${Section} title="Last error" testid="task-error">
      <p class="error-line"><strong data-testid="task-error-name">${error_.name}</strong>: <span data-testid="task-error-message">${error_.message}</span>${error_.code ? html` <span class="badge" title="error code">${error_.code}</span>` : null}</p>
      ${error_.stack ? html`<pre class="stack" data-testid="task-stack">${error_.stack}</pre>` : null}
    <//>`}
    ${t.result !== undefined && html`<${Section} title="Result"><${JsonBlock} value=${t.result} testid="task-result" /><//>`}
    ${t.progress !== null && t.progress !== undefined && html`<${Section} title="Progress"><${JsonBlock} value=${t.progress} testid="task-progress" /><//>`}
    <${Section} title="Payload">
      ${t.payload === null || t.payload === undefined ? html`<p class="empty" data-testid="task-payload">${missingPayload(t)}</p>` : html`<${JsonBlock} value=${t.payload} testid="task-payload" />`}
    <//>`;
}

/** Why a task page has no payload to show, in words an operator can act on. */
function missingPayload(t: TaskInfo): string {
  if (t.payloadOmitted === 'too large') return 'Not kept: its JSON is larger than 64 KiB.';
  if (t.state === 'pending') return 'Not known here (this broker cannot look a waiting task up by id).';
  if (t.finishedAt !== null) return `Not kept for ${t.state} tasks: the result store keeps payloads as createApp({ keepPayload }) says (default: failures only).`;
  return 'Not known here.';
}
