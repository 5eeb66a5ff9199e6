/**
 * Rate charts as plain SVG: a line (and a faint area) per series over a fixed window of points,
 * right-aligned so a dashboard that started a minute ago shows one minute of line at the right.
 * The y scale starts at 0 and tops at the window's peak (at least 1/s, so idle reads as flat).
 * Each point is the average of the last SMOOTH_POINTS seconds: workers report every 2 s, so raw
 * 1-s rates saw-tooth; a short trailing average (as Prometheus' rate over a window) reads truer.
 */
import { html } from 'htm/preact';
import type { Series } from '../../src/api.ts';
import { duration, rate } from '../format.ts';

const W = 600;
const H = 100;

type Line = 'processed' | 'failed';

const SMOOTH_POINTS = 5;

/** The most points a chart draws: five minutes of 1-s points, asked of the API with `?points=`. */
export const CHART_POINTS = 300;

function smooth(values: number[]): number[] {
  let sum = 0;
  return values.map((v, i) => {
    sum += v - (i >= SMOOTH_POINTS ? values[i - SMOOTH_POINTS]! : 0);
    return Math.max(0, sum / Math.min(i + 1, SMOOTH_POINTS));
  });
}

function lastPoints(values: number[], points: number): number[] {
  return values.length > points ? values.slice(values.length - points) : values;
}

function path(values: number[], points: number, top: number): { line: string; area: string } {
  if (values.length === 0) return { line: '', area: '' };
  const step = W / Math.max(points - 1, 1);
  const x0 = W - (values.length - 1) * step;
  const coords = values.map((v, i) => `${(x0 + i * step).toFixed(1)},${(H - (Math.min(v, top) / top) * (H - 2) - 1).toFixed(1)}`);
  const line = `M${coords.join('L')}`;
  return { line, area: `${line}L${W},${H}L${x0.toFixed(1)},${H}Z` };
}

interface ChartProps {
  series: Series;
  lines: Line[];
  /** How many points the window holds (the series' step each). */
  points: number;
  large?: boolean;
  testid?: string;
}

export function RateChart({ series, lines, points, large = false, testid }: ChartProps) {
  const shown = lines.map((name) => ({ name, values: lastPoints(smooth(series[name]), points) }));
  const peak = Math.max(1, ...shown.flatMap((s) => s.values));
  const span = duration(points * series.stepMs);
  const now = shown.map((s) => `${s.name} ${rate(s.values.at(-1) ?? 0)}/s`).join(', ');
  return html`<figure class=${large ? 'chart chart-large' : 'chart chart-spark'} data-testid=${testid}>
    <svg viewBox=${`0 0 ${W} ${H}`} preserveAspectRatio="none" role="img" aria-label=${`tasks per second over the last ${span}: ${now}`}>
      <title>${`Last ${span} (${SMOOTH_POINTS}-s averages), peak ${rate(peak)}/s; now ${now}`}</title>
      ${large && html`<line class="chart-grid" x1="0" x2=${W} y1=${H / 2} y2=${H / 2} />`}
      ${shown.map((s) => {
        const d = path(s.values, points, peak);
        return html`<path class=${`chart-area chart-${s.name}`} d=${d.area} />
          <path class=${`chart-line chart-${s.name}`} d=${d.line} vector-effect="non-scaling-stroke" />`;
      })}
    </svg>
    ${large &&
    html`<figcaption>
      <span class="chart-peak">peak ${rate(peak)}/s</span>
      <span class="chart-legend">${shown.map((s) => html`<span class=${`legend legend-${s.name}`}><span>${s.name} <b class="num">${rate(s.values.at(-1) ?? 0)}</b>/s</span></span>`)}</span>
      <span class="chart-span">last ${span}</span>
    </figcaption>`}
  </figure>`;
}
