import { useEffect, useRef } from 'preact/hooks';
import type uPlot from 'uplot';

/**
 * A time-series chart (uPlot, loaded on demand so screens without charts do not pay for it).
 * `x` is seconds since the epoch; each series one line. A table of the same figures is given
 * to screen readers (and to anyone who prefers reading) by the caller.
 */
export interface Series {
  label: string;
  values: (number | null)[];
}

const PALETTE = [
  'var(--primary)',
  'var(--accent)',
  '#e4572e',
  '#29a36a',
  '#a05195',
  '#f0a202',
  '#4c6ef5',
  '#868e96',
];

export function TimeChart({
  x,
  series,
  height = 220,
  title,
  format,
}: {
  x: number[];
  series: Series[];
  height?: number;
  title: string;
  format?: (v: number) => string;
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    let plot: uPlot | null = null;
    let gone = false;
    const el = box.current;
    if (!el) return;
    void import('uplot').then(({ default: UPlot }) => {
      if (gone) return;
      const css = getComputedStyle(el);
      const color = (v: string) =>
        v.startsWith('var(') ? css.getPropertyValue(v.slice(4, -1)).trim() || '#4f46e5' : v;
      const text = css.getPropertyValue('--text').trim() || '#222';
      const grid = css.getPropertyValue('--border').trim() || '#ddd';
      const axis = { stroke: text, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid } };
      plot = new UPlot(
        {
          width: Math.max(280, el.clientWidth),
          height,
          series: [
            {},
            ...series.map((s, i) => ({
              label: s.label,
              stroke: color(PALETTE[i % PALETTE.length]!),
              width: 2,
              value: format ? (_u: uPlot, v: number | null) => (v === null ? '—' : format(v)) : undefined,
            })),
          ],
          axes: [
            axis,
            { ...axis, values: format ? (_u: uPlot, vs: number[]) => vs.map(format) : undefined, size: 70 },
          ],
        },
        [x, ...series.map((s) => s.values)] as uPlot.AlignedData,
        el,
      );
    });
    const onResize = () => plot?.setSize({ width: Math.max(280, el.clientWidth), height });
    window.addEventListener('resize', onResize);
    return () => {
      gone = true;
      window.removeEventListener('resize', onResize);
      plot?.destroy();
    };
  }, [x, series, height, format]);
  return <div ref={box} class="chart" role="img" aria-label={title} />;
}
