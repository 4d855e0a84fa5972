/**
 * The per-hop overhead chart (`mesh-overhead.svg`): for each hop its p50 and p99 as horizontal bars,
 * with the budget marked, and below it the request time of each path. Plain SVG 1.1, no script, no
 * external font, so that it renders the same in a browser, a Markdown viewer and rsvg.
 */
import type { ReportData } from './report.ts';

const W = 960;
const LABEL_W = 250;
const PLOT_W = W - LABEL_W - 40;
const ROW_H = 46;
const BAR_H = 16;
const COLORS = { p50: '#1f5fa8', p99: '#8db8e8', budget: '#d62728', grid: '#d9d9d9', text: '#222' };

/** One row of a panel: a label and its p50/p99 values, and optional budget marks. */
export interface ChartRow {
  label: string;
  sublabel?: string;
  p50: number | null;
  p99: number | null;
  budget?: { p50Ms: number; p99Ms: number };
}

function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

function fmt(v: number): string {
  const a = Math.abs(v);
  return a === 0 ? '0' : a >= 10 ? v.toFixed(0) : a >= 1 ? v.toFixed(1) : v.toFixed(2);
}

/** Axis labels: no trailing zeros (5, 2.5, 0.25). */
function tick(v: number): string {
  return String(Number(v.toPrecision(6)));
}

/** Round a span up to a readable axis step (1, 2 or 5 × 10^k). */
export function niceStep(span: number, ticks = 6): number {
  if (!(span > 0)) return 1;
  const raw = span / ticks;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const n = raw / pow;
  return (n <= 1 ? 1 : n <= 2 ? 2 : n <= 5 ? 5 : 10) * pow;
}

function panel(title: string, rows: ChartRow[], top: number): { svg: string; height: number } {
  const values = rows.flatMap((r) => [r.p50, r.p99, r.budget?.p50Ms, r.budget?.p99Ms]);
  const nums = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  const lo = Math.min(0, ...nums);
  const hiRaw = Math.max(0, ...nums);
  const step = niceStep(hiRaw - lo || 1);
  const min = Math.floor(lo / step) * step;
  const max = Math.max(Math.ceil((hiRaw * 1.05) / step) * step, min + step);
  const x = (v: number): number => LABEL_W + ((v - min) / (max - min)) * PLOT_W;
  const out: string[] = [];
  const plotTop = top + 30;
  const plotH = rows.length * ROW_H;
  out.push(
    `<text x="20" y="${top + 18}" font-size="16" font-weight="bold" fill="${COLORS.text}">${esc(title)}</text>`,
  );
  for (let v = min; v <= max + step / 2; v += step) {
    const gx = x(v).toFixed(1);
    out.push(
      `<line x1="${gx}" y1="${plotTop}" x2="${gx}" y2="${plotTop + plotH}" stroke="${v === 0 ? '#888' : COLORS.grid}" stroke-width="1"/>`,
      `<text x="${gx}" y="${plotTop + plotH + 16}" font-size="12" text-anchor="middle" fill="${COLORS.text}">${tick(v)}</text>`,
    );
  }
  out.push(
    `<text x="${LABEL_W + PLOT_W / 2}" y="${plotTop + plotH + 34}" font-size="12" text-anchor="middle" fill="${COLORS.text}">milliseconds</text>`,
  );
  rows.forEach((r, i) => {
    const y = plotTop + i * ROW_H + 6;
    out.push(
      `<text x="${LABEL_W - 10}" y="${y + 14}" font-size="13" text-anchor="end" fill="${COLORS.text}">${esc(r.label)}</text>`,
    );
    if (r.sublabel)
      out.push(
        `<text x="${LABEL_W - 10}" y="${y + 30}" font-size="11" text-anchor="end" fill="#666">${esc(r.sublabel)}</text>`,
      );
    const bar = (v: number | null, dy: number, color: string, name: string): void => {
      if (v === null) {
        out.push(
          `<text x="${x(0) + 4}" y="${y + dy + 12}" font-size="11" fill="#666">${name}: n/a</text>`,
        );
        return;
      }
      const x0 = Math.min(x(0), x(v));
      const w = Math.max(1, Math.abs(x(v) - x(0)));
      out.push(
        `<rect x="${x0.toFixed(1)}" y="${y + dy}" width="${w.toFixed(1)}" height="${BAR_H}" fill="${color}"/>`,
        `<text x="${(Math.max(x(0), x(v)) + 4).toFixed(1)}" y="${y + dy + 12}" font-size="11" fill="${COLORS.text}">${name} ${fmt(v)} ms</text>`,
      );
    };
    bar(r.p50, 0, COLORS.p50, 'p50');
    bar(r.p99, BAR_H + 2, COLORS.p99, 'p99');
    if (r.budget) {
      for (const [v, dy] of [
        [r.budget.p50Ms, 0],
        [r.budget.p99Ms, BAR_H + 2],
      ] as const) {
        const bx = x(v).toFixed(1);
        out.push(
          `<line x1="${bx}" y1="${y + dy - 3}" x2="${bx}" y2="${y + dy + BAR_H + 3}" stroke="${COLORS.budget}" stroke-width="3" stroke-dasharray="5 2"/>`,
        );
      }
    }
  });
  return { svg: out.join('\n'), height: plotH + 70 };
}

function legend(y: number, budget: string | null): string {
  const items: [string, string, boolean][] = [
    ['p50', COLORS.p50, false],
    ['p99', COLORS.p99, false],
  ];
  if (budget) items.push([budget, COLORS.budget, true]);
  let x = LABEL_W;
  const out: string[] = [];
  for (const [name, color, dashed] of items) {
    out.push(
      dashed
        ? `<line x1="${x}" y1="${y - 10}" x2="${x}" y2="${y + 4}" stroke="${color}" stroke-width="2.5" stroke-dasharray="4 2"/>`
        : `<rect x="${x - 6}" y="${y - 10}" width="14" height="14" fill="${color}"/>`,
      `<text x="${x + 14}" y="${y + 2}" font-size="12" fill="${COLORS.text}">${esc(name)}</text>`,
    );
    x += 70 + name.length * 6;
  }
  return out.join('\n');
}

/** The chart as SVG text, or null when the run had no mesh probe. */
export function renderOverheadSvg(r: ReportData): string | null {
  if (!r.mesh) return null;
  const hopRows: ChartRow[] = r.mesh.hops.map((h) => ({
    label: h.envoy ? `${h.name}` : `${h.name} (not Envoy)`,
    sublabel: `${h.outer} − ${h.inner}, ${h.count} pairs`,
    p50: h.p50,
    p99: h.p99,
    ...(h.budget ? { budget: h.budget } : {}),
  }));
  const pathRows: ChartRow[] = r.mesh.paths.map((p) => ({
    label: p.name,
    sublabel: `${p.count} requests`,
    p50: p.p50,
    p99: p.p99,
  }));
  const verdict =
    r.exitCode === 0
      ? 'PASS'
      : r.exitCode === 99
        ? 'FAIL: budget breached'
        : `k6 exit ${r.exitCode}`;
  const header = `Mesh overhead per hop: ${r.scenario} (${verdict})`;
  const cpu = r.k6.cpu ? `${Math.round(r.k6.cpu.average * 100)} % of a core` : 'n/a';
  const sub = `${r.startedAt}; paired differences per iteration, measured phase only; k6 CPU ${cpu}; load average ${r.loadAverage.start.map((v) => v.toFixed(1)).join(' ')}`;
  const a = panel('Overhead of each hop', hopRows, 60);
  const b = panel('Request time per path (fewer hops below)', pathRows, 60 + a.height + 10);
  const legendY = 60 + a.height + b.height + 30;
  const h = legendY + 30;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">`,
    `<rect width="${W}" height="${h}" fill="#ffffff"/>`,
    `<text x="20" y="28" font-size="18" font-weight="bold" fill="${COLORS.text}">${esc(header)}</text>`,
    `<text x="20" y="48" font-size="12" fill="#555">${esc(sub)}</text>`,
    a.svg,
    b.svg,
    legend(
      legendY,
      r.mesh.budget && hopRows.some((x) => x.budget)
        ? `budget per Envoy traversal: p50 ≤ ${r.mesh.budget.p50Ms} ms, p99 ≤ ${r.mesh.budget.p99Ms} ms`
        : null,
    ),
    '</svg>',
    '',
  ].join('\n');
}
