// The chart of the selected indices: one line each, level against HKT time (per second).

import { chartTime, formatHkt, formatLevel } from "./format.js";

export const VENDOR_PATH = "/static/vendor/lightweight-charts.mjs";
const COLOURS = ["#1a73e8", "#d93025", "#188038", "#e37400", "#9334e6", "#12b5cb", "#5f6368"];
const PERCENTAGE_MODE = 2; // PriceScaleMode.Percentage: several indices on one scale

/** The chart library, or null (with the reason on the page) when it was not built. */
export async function loadChartLibrary(note) {
  try {
    return await import(VENDOR_PATH);
  } catch (error) {
    note.hidden = false;
    note.textContent =
      "The chart library was not built, so there is no chart (the table is live). Build it " +
      "with `make vendor` (npm ci in web/, copied into consumers/gateway/static/vendor/), " +
      "then reload the page.";
    console.warn("chart library missing", error);
    return null;
  }
}

function hktLabel(time) {
  return formatHkt((time - 8 * 3600) * 1e9).slice(0, 8);
}

/** A line per selected index, seeded from its history, then live (coalesced per frame). */
export class IndexChart {
  constructor(library, element) {
    this.library = library;
    this.element = element;
    this.chart = library.createChart(element, {
      autoSize: true,
      layout: { background: { color: "#ffffff" }, textColor: "#1f2328", attributionLogo: true },
      timeScale: { timeVisible: true, secondsVisible: true },
      localization: { timeFormatter: hktLabel, priceFormatter: formatLevel },
    });
    this.lines = new Map();
    this.points = 0;
    this.nextColour = 0;
  }

  has(code) {
    return this.lines.has(code);
  }

  codes() {
    return [...this.lines.keys()];
  }

  /** Add ``code``'s line; its points come from ``seed`` (history), live ones after that. */
  add(code) {
    const series = this.chart.addSeries(this.library.LineSeries, {
      color: COLOURS[this.nextColour++ % COLOURS.length],
      lineWidth: 2,
      title: code,
    });
    this.lines.set(code, { series, seeded: false, last: null, count: 0, pending: new Map() });
    this.rescale();
  }

  remove(code) {
    const line = this.lines.get(code);
    if (!line) return;
    this.chart.removeSeries(line.series);
    this.points -= line.count;
    this.lines.delete(code);
    this.rescale();
    this.publishCount();
  }

  rescale() {
    const mode = this.lines.size > 1 ? PERCENTAGE_MODE : 0;
    this.chart.priceScale("right").applyOptions({ mode });
  }

  /** The history of ``code`` (levels, oldest first): the last level of each second. */
  seed(code, levels) {
    const line = this.lines.get(code);
    if (!line) return;
    const bySecond = new Map();
    for (const level of levels) bySecond.set(chartTime(level.ts_event), level.level);
    for (const [time, value] of line.pending) bySecond.set(time, value);
    const data = [...bySecond]
      .sort((a, b) => a[0] - b[0])
      .map(([time, value]) => ({ time, value }));
    line.series.setData(data);
    this.points += data.length - line.count;
    line.count = data.length;
    line.last = data.length ? data[data.length - 1].time : null;
    line.pending.clear();
    line.seeded = true;
    this.chart.timeScale().fitContent();
    this.publishCount();
  }

  /** One live level (drawn at the next ``draw``). */
  push(code, level) {
    const line = this.lines.get(code);
    if (line) line.pending.set(chartTime(level.ts_event), level.level);
  }

  draw() {
    for (const line of this.lines.values()) {
      if (!line.seeded || line.pending.size === 0) continue;
      for (const [time, value] of [...line.pending].sort((a, b) => a[0] - b[0])) {
        if (line.last !== null && time < line.last) continue; // older than the line's end
        if (time !== line.last) {
          line.count += 1;
          this.points += 1;
        }
        line.series.update({ time, value });
        line.last = time;
      }
      line.pending.clear();
    }
    this.publishCount();
  }

  publishCount() {
    this.element.dataset.points = String(this.points);
  }
}
