/**
 * Queue `/queues/:queue`: counts and rates; the tasks running (with their worker), ready and
 * delayed; its dead letters with reason and last error. Actions: pause/resume, purge, redrive all,
 * redrive or discard one letter. Without the control plane (RabbitMQ alone) no rates, running
 * tasks or pause: the workers' registry is not there.
 */
import { html } from 'htm/preact';
import { useEffect, useState } from 'preact/hooks';
import type { DeadLettersView, DeadLetterView, Info, QueueView, RedriveResult } from '../../src/api.ts';
import type { QueuedTask } from '@celeriac/core';
import { api, apiPath, BULK_TIMEOUT_MS } from '../api.ts';
import { count, duration, jsonLine } from '../format.ts';
import { ActionButton, NoticeLine, useActions, type Actions } from '../parts/actions.ts';
import { CHART_POINTS, RateChart } from '../parts/chart.ts';
import { ErrorBanner, NoDataYet, NotFound, Section, Table, Tiles, When } from '../parts/common.ts';
import { usePoll } from '../poll.ts';
import { href } from '../router.ts';

const LIST_LIMIT = 50;
/** The most dead letters the page lists when asked for all of them (each with its whole message). */
const ALL_DEAD_LIMIT = 500;

function redriven(result: RedriveResult): string {
  const refused = result.refused.map((r) => `${r.id}: ${r.reason}`).join('; ');
  return `Redrove ${count(result.redriven.length)} task${result.redriven.length === 1 ? '' : 's'}${refused ? `; refused ${refused}` : ''}.`;
}

function TaskLink({ id, queue }: { id: string; queue: string }) {
  return html`<a class="mono" href=${href.task(id, queue)} data-testid="task-link">${id}</a>`;
}

function Waiting({ title, tasks, queue, delayed, testid }: { title: string; tasks: QueuedTask[] | null; queue: string; delayed: boolean; testid: string }) {
  if (tasks === null) return html`<${Section} title=${title} testid=${testid}><p class="empty">This broker cannot list its waiting tasks (RabbitMQ keeps them in order only); the counts above are exact.</p><//>`;
  return html`<${Section} title=${title} count=${tasks.length < LIST_LIMIT ? tasks.length : null} testid=${testid}>
    <${Table} head=${['Task id', 'Task', delayed ? 'Runs' : 'Enqueued', ['Attempt', 'num'], 'Payload', delayed ? 'Last error' : 'Priority']} empty=${tasks.length === 0 ? 'None.' : null}>
      ${tasks.map(
        (t) => html`<tr key=${t.id}>
          <td><${TaskLink} id=${t.id} queue=${queue} /></td>
          <td>${t.task}</td>
          <td><${When} at=${delayed ? t.eta : t.enqueuedAt} /></td>
          <td class="num">${t.attempt}/${t.maxAttempts}</td>
          <td class="mono clip">${jsonLine(t.payload)}</td>
          <td class=${delayed && t.lastError ? 'tone-bad clip' : 'clip'}>${delayed ? (t.lastError ? `${t.lastError.name}: ${t.lastError.message}` : '—') : t.priority}</td>
        </tr>`,
      )}
    <//>
  <//>`;
}

interface DeadLettersProps {
  queue: string;
  /** The few the queue view carries, and which end of the list they are from. */
  letters: DeadLetterView[];
  order: QueueView['deadOrder'];
  total: number;
  actions: Actions;
  /** Counts the actions done on the page: each reloads the full list. */
  acted: number;
}

function DeadLetters({ queue, letters, order, total, actions, acted }: DeadLettersProps) {
  // All of them (up to ALL_DEAD_LIMIT), loaded once when asked for, again on Refresh or after an
  // action: not every second (full messages; on RabbitMQ a listing holds the letters it reads).
  const [showAll, setShowAll] = useState(false);
  const all = usePoll<DeadLettersView>(showAll ? `${apiPath('queues', queue, 'dead')}?limit=${ALL_DEAD_LIMIT}` : null, null);
  useEffect(() => {
    all.refresh();
  }, [acted]);
  const shown = showAll && all.data ? all.data.letters : letters;
  const one = (verb: 'redrive' | 'discard', id: string) => async () =>
    verb === 'redrive'
      ? redriven(await api.post<RedriveResult>(apiPath('queues', queue, 'redrive'), { ids: [id] }, BULK_TIMEOUT_MS))
      : `Discarded ${count((await api.post<{ discarded: number }>(apiPath('queues', queue, 'discard'), { ids: [id] }, BULK_TIMEOUT_MS)).discarded)} dead letter.`;
  const toggle = html`${showAll && html`<button type="button" class="btn btn-small" data-testid="dead-refresh" onClick=${all.refresh}>Refresh list</button> `}<button type="button" class="btn btn-small" data-testid="dead-show-all" onClick=${() => setShowAll(!showAll)}>${showAll ? 'Show fewer' : `Show all ${count(total)}`}</button>`;
  return html`<${Section} title="Dead letters" count=${total} testid="dead-letters" actions=${total > letters.length || showAll ? toggle : null}>
    ${showAll && html`<${ErrorBanner} error=${all.error} stale=${all.data !== null} />`}
    <${Table} head=${['Task id', 'Task', 'Why', 'Died', '']} testid="dead-table" empty=${shown.length === 0 ? 'No dead letters.' : null}>
      ${shown.map(
        (d) => html`<tr key=${d.id} data-testid="dead-row" data-id=${d.id}>
          <td><${TaskLink} id=${d.id} queue=${queue} /></td>
          <td>${d.task ?? html`<span class="muted">unreadable</span>`}</td>
          <td class="why">
            <div class="clip" title=${d.reason} data-testid="dead-reason">${d.reason}</div>
            ${d.error && html`<div class="clip error-text" title=${d.error.message} data-testid="dead-error">${`${d.error.name}: ${d.error.message}`}</div>`}
          </td>
          <td><${When} at=${d.at} /></td>
          <td class="row-actions">
            <${ActionButton} label="Redrive" small=${true} actions=${actions} action=${one('redrive', d.id)} testid="redrive-one" />
            <${ActionButton} label="Discard" small=${true} danger=${true} actions=${actions} action=${one('discard', d.id)} testid="discard-one" confirm=${`Discard dead letter ${d.id}? It is deleted for good.`} />
          </td>
        </tr>`,
      )}
    <//>
    ${total > shown.length ? html`<p class="muted more" data-testid="dead-more">Showing the ${order} ${count(shown.length)} of ${count(total)}.</p>` : null}
  <//>`;
}

export function QueuePage({ info, queue }: { info: Info; queue: string }) {
  const { data, error, refresh } = usePoll<QueueView>(`${apiPath('queues', queue)}?limit=${LIST_LIMIT}&points=${CHART_POINTS}`, info.refreshMs);
  const [acted, setActed] = useState(0);
  const actions = useActions(() => (refresh(), setActed((n) => n + 1)));
  if (!data) {
    if (error?.status === 404) return html`<${NotFound} what=${`No queue named ${queue}.`} />`;
    return html`<${NoDataYet} error=${error} />`;
  }
  const q = data.queue;
  const post = <T>(verb: string, body?: unknown, timeoutMs?: number) => api.post<T>(apiPath('queues', queue, verb), body, timeoutMs);
  const controls = html`
    ${info.control &&
    (q.paused
      ? html`<${ActionButton} label="Resume" actions=${actions} testid="resume" action=${async () => (await post('resume'), `Resumed ${queue}: workers take its tasks again.`)} />`
      : html`<${ActionButton} label="Pause" actions=${actions} testid="pause" action=${async () => (await post('pause'), `Paused ${queue}: workers finish what they run and take no more of its tasks.`)} />`)}
    <${ActionButton} label="Redrive all" actions=${actions} testid="redrive-all" confirm=${`Put all ${count(q.dead)} dead letters of ${queue} back in the queue?`} action=${async () => redriven(await post<RedriveResult>('redrive', {}, BULK_TIMEOUT_MS))} />
    <${ActionButton} label="Purge" danger=${true} actions=${actions} testid="purge" confirm=${`Delete all ${count(q.ready)} ready and ${count(q.delayed)} delayed tasks of ${queue}? This cannot be undone.`} confirmLabel="Purge ready and delayed tasks" action=${async () => `Purged ${count((await post<{ purged: number }>('purge', undefined, BULK_TIMEOUT_MS)).purged)} tasks.`} />`;
  return html`<${ErrorBanner} error=${error} stale=${true} />
    <div class="page-head">
      <h1><span class="muted">Queue</span> <span data-testid="queue-name">${q.queue}</span>${q.paused ? html` <span class="badge state-paused" data-testid="queue-paused">paused</span>` : null}</h1>
      <div class="actions">${controls}</div>
    </div>
    <${NoticeLine} notice=${actions.notice} />
    <${Tiles}
      tiles=${[
        { label: 'Ready', value: q.ready, testid: 'count-ready' },
        { label: 'Delayed', value: q.delayed, tone: q.delayed > 0 ? 'warn' : null, testid: 'count-delayed' },
        { label: 'In flight', value: q.inFlight, tone: q.inFlight > 0 ? 'run' : null, testid: 'count-in-flight' },
        { label: 'Dead', value: q.dead, tone: q.dead > 0 ? 'bad' : null, testid: 'count-dead' },
      ]}
    />
    ${info.control &&
    html`<${Section} title="Throughput">
      <${RateChart} series=${data.rates} lines=${['processed', 'failed']} points=${Math.max(60, data.rates.processed.length)} large=${true} testid="queue-chart" />
    <//>
    <${Section} title="Running" count=${q.running.length} testid="running">
      <${Table} head=${['Task id', 'Task', 'Worker', 'Started', ['Running for', 'num']]} empty=${q.running.length === 0 ? 'Nothing running.' : null}>
        ${q.running.map(
          (r) => html`<tr key=${r.id}>
            <td><${TaskLink} id=${r.id} queue=${queue} /></td>
            <td>${r.task}</td>
            <td class="mono">${r.worker}</td>
            <td><${When} at=${r.startedAt} /></td>
            <td class="num">${duration(Math.max(0, data.at - r.startedAt))}</td>
          </tr>`,
        )}
      <//>
    <//>`}
    <${Waiting} title="Ready (next to run)" tasks=${q.readyTasks} queue=${queue} delayed=${false} testid="ready" />
    <${Waiting} title="Delayed" tasks=${q.delayedTasks} queue=${queue} delayed=${true} testid="delayed" />
    <${DeadLetters} queue=${queue} letters=${data.dead} order=${data.deadOrder} total=${q.dead} actions=${actions} acted=${acted} />`;
}
