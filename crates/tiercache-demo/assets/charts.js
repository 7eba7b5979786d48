// Charts over time for both pages, drawn by the vendored uPlot (assets/vendor): a real time axis
// with ticks and a grid, a legend, a tooltip at the cursor, and text at the size the stylesheet
// gives `.chart` whatever the chart's width (uPlot draws on a canvas in CSS pixels, so nothing
// scales with a view box).
"use strict";

/** Height of the plotting area with its axes, in CSS pixels; the legend sits below. */
const CHART_HEIGHT = 180;

const utcDay = new Intl.DateTimeFormat(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
const utcMonth = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric", timeZone: "UTC" });
const utcDate = new Intl.DateTimeFormat(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
const clock = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit" });
const clockSeconds = new Intl.DateTimeFormat(undefined, { hour: "numeric", minute: "2-digit", second: "2-digit" });

/** Tick labels of a time axis; `days` for the UTC days of a trend, otherwise local clock time. */
function timeTicks(days) {
  return (u, splits, axisIdx, space, incr) => splits.map((t) => {
    const d = new Date(t * 1000);
    if (days) return (incr >= 28 * 86400 ? utcMonth : utcDay).format(d);
    return (incr < 60 ? clockSeconds : clock).format(d);
  });
}

/**
 * A y-axis tick: as many decimals as the step between ticks needs (0.05 steps show two, 25 steps
 * none), thousands and up in the short form (1.2K).
 */
function tickNumber(v, step) {
  if (Math.abs(v) >= 1000) return compact(v);
  const decimals = Math.min(6, Math.max(0, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

/** The font the stylesheet gives `node` (its `.chart` rule), as a canvas font. */
function cssFont(node) {
  const style = getComputedStyle(node);
  return `${style.fontSize} ${style.fontFamily}`;
}

/** The time of a point as a tooltip shows it, with its machine-readable date. */
function describeTime(t, days) {
  const d = new Date(t * 1000);
  return days
    ? el("time", { datetime: d.toISOString().slice(0, 10) }, utcDate.format(d))
    : el("time", { datetime: d.toISOString() }, clockSeconds.format(d));
}

/**
 * Shows the time and every series' value at the cursor in a box beside it. Reads the chart's
 * `state` at each move, so a chart updated with new data describes the new data.
 */
function tooltipPlugin(state) {
  let tip = null;
  const hide = () => { tip.hidden = true; };
  return {
    hooks: {
      init(u) {
        tip = el("div", { class: "chart-tip", role: "tooltip", hidden: true });
        u.over.append(tip);
        u.over.addEventListener("mouseleave", hide);
      },
      setCursor(u) {
        const { idx, left, top } = u.cursor;
        if (idx === null || idx === undefined || left < 0) return hide();
        const rows = u.series.slice(1).filter((s) => s.show).map((s) => {
          const i = u.series.indexOf(s);
          const v = u.data[i][idx];
          const known = v !== null && v !== undefined;
          return el("div", {}, el("span", { class: "swatch", style: `background:${s.stroke(u, i)}` }),
            `${s.label}: `, el("b", { "data-value": known ? v : null }, known ? state.detail(v, idx) : "–"));
        });
        fill(tip, el("div", { class: "chart-tip-x" }, describeTime(u.data[0][idx], state.days)), rows);
        tip.dataset.index = String(idx);
        tip.hidden = false;
        // Beside the cursor, on the side with room.
        const x = left + 12 + tip.offsetWidth > u.over.clientWidth ? left - 12 - tip.offsetWidth : left + 12;
        tip.style.transform = `translate(${Math.max(0, x)}px, ${Math.max(0, top - tip.offsetHeight - 8)}px)`;
      },
    },
  };
}

/**
 * Draws (or updates) a chart over time in `container`.
 * - `x`: times in Unix seconds; `series`: [{ label, colour, values }] aligned with `x` (null: none).
 * - `days`: the points are UTC days (bars centred on each day, dates on the axis); otherwise
 *   lines over local clock time.
 * - `range`: [from, to] in seconds, the span the time axis covers (default: the data's).
 * - `unit`: what follows each y-axis tick (" %"); `detail(value, i)`: a value as the tooltip shows
 *   it.
 * The tick labels drawn are kept in the container's `data-x-ticks` and `data-y-ticks`, and the
 * uPlot instance in its `chart` property.
 */
function timeChart(container, { title, x, series, days = false, range = null, unit = "",
  detail = (v) => String(v), empty = "No data yet." }) {
  container.classList.add("chart");
  container.setAttribute("role", "figure");
  container.setAttribute("aria-label", title);
  const state = container.chartState || (container.chartState = {});
  Object.assign(state, { range, days, unit, detail });
  const data = [x, ...series.map((s) => s.values)];
  const shape = JSON.stringify([days, series.map((s) => [s.label, s.colour])]);
  if (!x.length) {
    if (container.chart) container.chart.destroy();
    container.chart = null;
    fill(container, el("p", { class: "muted" }, empty));
    return;
  }
  // An error message may have replaced the chart since: then it is drawn anew.
  if (container.chart && state.shape === shape && container.contains(container.chart.root)) {
    container.chart.setData(data);
    return;
  }
  if (container.chart) container.chart.destroy();
  fill(container);
  state.shape = shape;
  const font = cssFont(container);
  const axis = { font, stroke: getComputedStyle(container).color, grid: { stroke: "#e4e7ec", width: 1 },
    ticks: { stroke: "#d5d9e0", width: 1, size: 4 } };
  const xTicks = timeTicks(days);
  const kept = (axis, labels) => { container.dataset[axis] = labels.join(" | "); return labels; };
  const opts = {
    width: Math.max(200, container.clientWidth),
    height: CHART_HEIGHT,
    // Each series is a number; the x axis is time in seconds.
    scales: {
      // Days: the period asked for, or half a day past the first and last bar. Otherwise at least
      // the last minute, so a young page's few samples still have an axis around them (uPlot
      // would give a single one a whole day).
      x: { time: true, range: (u, min, max) => {
        if (state.range) return state.range;
        const xs = u.data[0], first = xs[0], last = xs[xs.length - 1];
        if (days) return [first - 43200, last + 43200];
        return last - first < 60 ? [last - 60, last] : [first, last];
      } },
      y: { range: (u, min, max) => [0, max > 0 ? max * 1.08 : 1] },
    },
    axes: [
      // Clock labels ("12:45:30 PM") are wider than dates ("Dec 8").
      Object.assign({ values: (u, ...rest) => kept("xTicks", xTicks(u, ...rest)), space: days ? 64 : 96 }, axis),
      Object.assign({ values: (u, splits, i, space, step) => kept("yTicks", splits.map((v) => tickNumber(v, step) + state.unit)),
        size: 64, space: 30 }, axis),
    ],
    series: [{ label: "time" }].concat(series.map((s) => ({
      label: s.label, stroke: s.colour, width: days ? 0 : 2,
      fill: days ? s.colour : null,
      paths: days ? uPlot.paths.bars({ size: [0.7, 48], align: 0 }) : undefined,
      // Lines keep uPlot's own rule: dots where samples are few and far apart, so a lone sample shows.
      points: days ? { show: false } : {},
    }))),
    legend: { show: true, live: false },
    cursor: { points: { show: !days }, drag: { x: false, y: false } },
    plugins: [tooltipPlugin(state)],
  };
  container.dataset.axisFont = font;
  container.chart = new uPlot(opts, data, container);
  if (!container.resizeWatch) {
    // Follows the card's width; the text keeps its size because only the canvas grows.
    container.resizeWatch = new ResizeObserver(() => {
      const width = Math.max(200, container.clientWidth);
      if (container.chart && container.chart.width !== width) container.chart.setSize({ width, height: CHART_HEIGHT });
    });
    container.resizeWatch.observe(container);
  }
}
