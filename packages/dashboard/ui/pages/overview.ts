/** Overview `/`: every queue with its counts and live rates, workers online, all queues' rates together. */
import { html } from 'htm/preact';
import type { Info, QueueSummary, QueuesView } from '../../src/api.ts';
import { count } from '../format.ts';
import { CHART_POINTS, RateChart } from '../parts/chart.ts';
import { ErrorBanner, NoDataYet, Section, Table, Tiles, type Tile } from '../parts/common.ts';
import { usePoll } from '../poll.ts';
import { href } from '../router.ts';

/** A table's sparklines show up to five minutes of 1-s points, at least one. */
const sparkPoints = (length: number) => Math.min(CHART_POINTS, Math.max(60, length));

function totals(queues: QueueSummary[]) {
  return queues.reduce((t, q) => ({ ready: t.ready + q.ready, delayed: t.delayed + q.delayed, inFlight: t.inFlight + q.inFlight, dead: t.dead + q.dead }), { ready: 0, delayed: 0, inFlight: 0, dead: 0 });
}

function QueueRow({ q, rates }: { q: QueueSummary; rates: boolean }) {
  return html`<tr data-testid="queue-row" data-queue=${q.queue}>
    <td class="name">
      <a href=${href.queue(q.queue)} data-testid="queue-link">${q.queue}</a>
      ${q.paused ? html` <span class="badge state-paused" data-testid="queue-paused">paused</span>` : null}
    </td>
    <td class="num" data-testid="queue-ready">${count(q.ready)}</td>
    <td class="num" data-testid="queue-delayed">${count(q.delayed)}</td>
    <td class="num" data-testid="queue-in-flight">${count(q.inFlight)}</td>
    <td class=${`num${q.dead > 0 ? ' tone-bad' : ''}`} data-testid="queue-dead">${count(q.dead)}</td>
    ${rates &&
    html`<td class="spark-cell"><${RateChart} series=${q.rates} lines=${['processed']} points=${sparkPoints(q.rates.processed.length)} /></td>
      <td class="spark-cell"><${RateChart} series=${q.rates} lines=${['failed']} points=${sparkPoints(q.rates.processed.length)} /></td>`}
  </tr>`;
}

export function OverviewPage({ info }: { info: Info }) {
  const { data, error } = usePoll<QueuesView>(`api/queues?points=${CHART_POINTS}`, info.refreshMs);
  if (!data) return html`<${NoDataYet} error=${error} />`;
  const t = totals(data.queues);
  // Rates and workers come from the workers' registry: not there without the control plane (RabbitMQ alone).
  const control = info.control;
  const tiles: Tile[] = [
    { label: 'Queues', value: data.queues.length, testid: 'total-queues' },
    ...(control ? [{ label: 'Workers online', value: data.workersOnline, tone: data.workersOnline > 0 ? ('ok' as const) : ('warn' as const), testid: 'workers-online' }] : []),
    { label: 'Ready', value: t.ready, testid: 'total-ready' },
    { label: 'Delayed', value: t.delayed, testid: 'total-delayed' },
    { label: 'In flight', value: t.inFlight, tone: t.inFlight > 0 ? 'run' : null, testid: 'total-in-flight' },
    { label: 'Dead', value: t.dead, tone: t.dead > 0 ? 'bad' : null, testid: 'total-dead' },
  ];
  const points = Math.max(2, data.rates.processed.length);
  return html`<${ErrorBanner} error=${error} stale=${true} />
    <div class="page-head"><h1>Overview</h1></div>
    <${Tiles} tiles=${tiles} />
    ${control &&
    html`<${Section} title="Throughput, all queues">
      <${RateChart} series=${data.rates} lines=${['processed', 'failed']} points=${Math.max(points, 60)} large=${true} testid="overview-chart" />
    <//>`}
    <${Section} title="Queues" count=${data.queues.length} testid="queues">
      <${Table}
        head=${['Queue', ['Ready', 'num'], ['Delayed', 'num'], ['In flight', 'num'], ['Dead', 'num'], ...(control ? ['Processed/s', 'Failed/s'] : [])]}
        testid="queues-table"
        empty=${data.queues.length === 0 ? (info.control ? 'No queues yet: a queue appears here once a task is enqueued to it or a worker serves it.' : 'No queues: on RabbitMQ alone, name them with --queues a,b (or the queues option).') : null}
      >
        ${data.queues.map((q) => html`<${QueueRow} key=${q.queue} q=${q} rates=${control} />`)}
      <//>
    <//>`;
}
