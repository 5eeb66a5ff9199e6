/** Workers `/workers`: every worker alive, what it serves and runs, what it has done. */
import { html } from 'htm/preact';
import type { Info, WorkersView } from '../../src/api.ts';
import { count, duration } from '../format.ts';
import { ErrorBanner, NoDataYet, Section, Table, When } from '../parts/common.ts';
import { usePoll } from '../poll.ts';
import { href } from '../router.ts';

export function WorkersPage({ info }: { info: Info }) {
  const { data, error } = usePoll<WorkersView>('api/workers', info.refreshMs);
  if (!data) return html`<${NoDataYet} error=${error} />`;
  return html`<${ErrorBanner} error=${error} stale=${true} />
    <div class="page-head"><h1>Workers</h1></div>
    <${Section} title="Online" count=${data.workers.length} testid="workers">
      <${Table}
        head=${['Worker', 'Host', ['PID', 'num'], 'Queues', ['Concurrency', 'num'], 'Active', ['Processed', 'num'], ['Failed', 'num'], ['Uptime', 'num'], 'Last seen']}
        testid="workers-table"
        empty=${data.workers.length === 0 ? 'No worker is online. Start one with: npx celeriac worker ./tasks.js' : null}
      >
        ${data.workers.map(
          (w) => html`<tr key=${w.id} data-testid="worker-row">
            <td class="mono" title=${`celeriac ${w.version}`}>${w.id}</td>
            <td>${w.host}</td>
            <td class="num">${w.pid}</td>
            <td>${w.queues.map((q, i) => html`${i > 0 ? ', ' : ''}<a href=${href.queue(q)}>${q}</a>`)}</td>
            <td class="num">${w.concurrency}</td>
            <td class="active-cell">
              <span class=${`num${w.active.length > 0 ? ' tone-run' : ' muted'}`}>${count(w.active.length)}</span>
              ${w.active.slice(0, 3).map((a) => html` <a class="mono chip" href=${href.task(a.id, a.queue)} title=${a.task}>${a.id}</a>`)}
              ${w.active.length > 3 ? html` <span class="muted">+${count(w.active.length - 3)}</span>` : null}
            </td>
            <td class="num">${count(w.processed)}</td>
            <td class=${`num${w.failed > 0 ? ' tone-bad' : ''}`}>${count(w.failed)}</td>
            <td class="num">${duration(Math.max(0, data.at - w.startedAt))}</td>
            <td><${When} at=${w.lastSeen} /></td>
          </tr>`,
        )}
      <//>
    <//>`;
}
