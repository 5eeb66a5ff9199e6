/** Schedules `/schedules`: every declared schedule with its expression, time zone, next and last run. */
import { html } from 'htm/preact';
import type { Info, SchedulesView } from '../../src/api.ts';
import { duration } from '../format.ts';
import { ErrorBanner, NoDataYet, Section, Table, When } from '../parts/common.ts';
import { usePoll } from '../poll.ts';
import { href } from '../router.ts';

export function SchedulesPage({ info }: { info: Info }) {
  const { data, error } = usePoll<SchedulesView>('api/schedules', info.refreshMs);
  if (!data) return html`<${NoDataYet} error=${error} />`;
  return html`<${ErrorBanner} error=${error} stale=${true} />
    <div class="page-head"><h1>Schedules</h1></div>
    <${Section} title="Declared" count=${data.schedules.length} testid="schedules">
      <${Table}
        head=${['Name', 'Task', 'Queue', 'Expression', 'Time zone', 'Next run', 'Last run']}
        testid="schedules-table"
        empty=${data.schedules.length === 0 ? 'No schedules: they appear once a scheduler declares them (celeriac beat, or celeriac worker --beat).' : null}
      >
        ${data.schedules.map(
          (s) => html`<tr key=${s.name} data-testid="schedule-row">
            <td class="name">${s.name}</td>
            <td>${s.task}</td>
            <td><a href=${href.queue(s.queue)}>${s.queue}</a></td>
            <td class="mono">${s.expression}${s.periodMs !== null ? html` <span class="muted">(every ${duration(s.periodMs)})</span>` : null}</td>
            <td>${s.tz}</td>
            <td><${When} at=${s.nextRun} /></td>
            <td><${When} at=${s.lastRun} /></td>
          </tr>`,
        )}
      <//>
    <//>`;
}
