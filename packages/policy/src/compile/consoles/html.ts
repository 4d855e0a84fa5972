/** The HTML and Go-template pieces the consoles are built of (see ../consoles.ts). */
import type { Route } from '../../schema.ts';

/** One row of a console's table: a label, a query and how to print its first value. */
export interface Row {
  label: string;
  expr: string;
  /** Appended to the value. */
  suffix?: string;
  /** A template of prom.lib that formats the value. @default 'printf.3g' */
  format?: string;
  /** Printed in the last column (the budget, the threshold). */
  note?: string;
}

/** One graph: one or more queries over the console's time range. */
export interface Graph {
  title: string;
  exprs: string[];
  /** Legend per query; `[[label]]` is replaced by the label's value. */
  names: string[];
  yUnits?: string;
  min?: number;
}

export const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A PromQL string as a Go template string literal (the queries use single quotes only). */
export const goString = (expr: string): string => {
  if (expr.includes('"') || expr.includes('\\') || expr.includes('{{') || expr.includes('}}'))
    throw new Error(`compileConsoles: a query may not contain '"', '\\', '{{' or '}}': ${expr}`);
  return `"${expr}"`;
};

/** `name{k='v', …}`: label values in single quotes, so that a query fits in a Go string literal. */
export function sel(name: string, labels: Record<string, string>): string {
  const parts = Object.entries(labels).map(([k, v]) => {
    const op = v.startsWith('!') ? '!=' : '=';
    const value = v.startsWith('!') ? v.slice(1) : v;
    if (/['\\]/.test(value)) throw new Error(`compileConsoles: label ${k} has a quote: ${value}`);
    return `${k}${op}'${value}'`;
  });
  return `${name}{${parts.join(',')}}`;
}

export function table(rows: Row[], queries: string[]): string {
  const lines = rows.map((r) => {
    queries.push(r.expr);
    const cell = `{{ template "prom_query_drilldown" (args ${goString(r.expr)} ${goString(r.suffix ?? '')} "${r.format ?? 'printf.3g'}") }}`;
    return `<tr><th>${esc(r.label)}</th><td>${cell}</td><td>${esc(r.note ?? '')}</td></tr>`;
  });
  return [
    '<table class="table table-sm table-bordered trellis_table">',
    '<tr><th></th><th>now</th><th>budget / note</th></tr>',
    ...lines,
    '</table>',
  ].join('\n');
}

export function graphs(list: Graph[], prefix: string, queries: string[]): string {
  return list
    .map((g, i) => {
      queries.push(...g.exprs);
      const id = `${prefix}${i}`;
      const js = (v: unknown) => JSON.stringify(v);
      return [
        `<h3>${esc(g.title)}</h3>`,
        `<div id="${id}"></div>`,
        '<script>',
        'new PromConsole.Graph({',
        `  node: document.querySelector(${js(`#${id}`)}),`,
        `  expr: ${js(g.exprs)},`,
        `  name: ${js(g.names)},`,
        `  yUnits: ${js(g.yUnits ?? '')},`,
        ...(g.min !== undefined ? [`  min: ${g.min},`] : []),
        '  yAxisFormatter: PromConsole.NumberFormatter.humanizeNoSmallPrefix,',
        '  yHoverFormatter: PromConsole.NumberFormatter.humanizeNoSmallPrefix,',
        '});',
        '</script>',
      ].join('\n');
    })
    .join('\n');
}

export function page(title: string, body: string): string {
  return [
    '{{ template "head" . }}',
    '{{ template "prom_content_head" . }}',
    `<h1>${esc(title)}</h1>`,
    body,
    '{{ template "prom_content_tail" . }}',
    '{{ template "tail" }}',
    '',
  ].join('\n');
}

export const routeLabel = (r: Route) => `${r.method} ${r.path} → ${r.backend}:${r.port}`;

/** A hop's console: its job, a table of current values, graphs. */
export interface Hop {
  name: string;
  /** The scrape job it reads. */
  job: string;
  title: string;
  rows: Row[];
  graphs: Graph[];
}

/** The body of a hop's console (its queries are appended to `queries`). */
export function hopBody(h: Hop, queries: string[]): string {
  return [table(h.rows, queries), graphs(h.graphs, `g_${h.name}_`, queries)].join('\n');
}
