/**
 * Reads the Prometheus text exposition format (version 0.0.4), strictly enough to catch a
 * malformed scrape: every sample line must parse, every sample must belong to a family declared
 * by `# TYPE`, and a family is declared once. For tests that scrape `/metrics`.
 */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  types: Map<string, string>;
  help: Map<string, string>;
  samples: Sample[];
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;
const SPECIAL = new Map([['nan', NaN], ['inf', Infinity], ['+inf', Infinity], ['-inf', -Infinity], ['infinity', Infinity], ['+infinity', Infinity], ['-infinity', -Infinity]]);
const SUFFIXES = ['_bucket', '_sum', '_count', '_total', '_created', ''];

export function parsePrometheus(text: string): Scrape {
  const types = new Map<string, string>();
  const help = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const meta = /^# (TYPE|HELP) (\S+) (.*)$/.exec(line);
    if (meta) {
      const into = meta[1] === 'TYPE' ? types : help;
      if (into.has(meta[2]!)) throw new Error(`line ${i + 1}: ${meta[1]} of ${meta[2]} given twice`);
      into.set(meta[2]!, meta[3]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1} is not a sample: ${line}`);
    // Go's ParseFloat, as Prometheus reads it: NaN and Inf in any case (prom-client writes `Nan`).
    const special = SPECIAL.get(m[3]!.toLowerCase());
    const value = special ?? Number(m[3]);
    if (Number.isNaN(value) && special === undefined) throw new Error(`line ${i + 1}: value ${m[3]} is not a number`);
    samples.push({ name: m[1]!, labels: parseLabels(m[2] ?? '', i + 1), value });
  }
  for (const s of samples) {
    const family = SUFFIXES.map((suffix) => (suffix && s.name.endsWith(suffix) ? s.name.slice(0, -suffix.length) : s.name)).find((f) => types.has(f));
    if (!family) throw new Error(`sample ${s.name} has no # TYPE line`);
  }
  return { types, help, samples };
}

function parseLabels(text: string, line: number): Record<string, string> {
  const labels: Record<string, string> = {};
  LABEL.lastIndex = 0;
  while (LABEL.lastIndex < text.length) {
    const start = LABEL.lastIndex;
    const m = LABEL.exec(text);
    if (!m || m.index !== start) throw new Error(`line ${line}: bad labels {${text}}`);
    labels[m[1]!] = m[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
  }
  return labels;
}

/** The value of the one sample named `name` whose labels include `labels`; undefined when none matches. */
export function sampleValue(scrape: Scrape, name: string, labels: Record<string, string> = {}): number | undefined {
  const matches = scrape.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
  if (matches.length > 1) throw new Error(`${matches.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return matches[0]?.value;
}
