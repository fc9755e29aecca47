// The table of every index: one row each, rewritten at most once per animation frame.

import { formatChange, formatHkt, formatLevel, formatPercent, hktDay } from "./format.js";

export const STALE_AFTER_MS = 30_000;
const FIELDS = ["code", "name", "level", "change", "pct", "high", "low", "time", "state"];
const NUMERIC = new Set(["level", "change", "pct", "high", "low", "time"]);

/** The latest state of one index, updated per level and drawn per frame. */
class IndexRow {
  constructor(spec, element) {
    this.spec = spec;
    this.element = element;
    this.cells = Object.fromEntries(
      FIELDS.map((field) => [field, element.querySelector(`[data-field="${field}"]`)]),
    );
    this.level = null;
    this.seq = null;
    this.tsEvent = null;
    this.high = null;
    this.low = null;
    this.updatedAt = performance.now();
    this.stale = false;
  }

  draw() {
    const { cells, element } = this;
    if (this.level === null) return;
    const change = this.level - this.spec.prev_close;
    const direction = change > 0 ? "up" : change < 0 ? "down" : "";
    element.dataset.seq = String(this.seq);
    element.dataset.level = String(this.level);
    cells.level.textContent = formatLevel(this.level);
    cells.change.textContent = formatChange(change);
    cells.pct.textContent = formatPercent((100 * change) / this.spec.prev_close);
    cells.change.className = `num ${direction}`;
    cells.pct.className = `num ${direction}`;
    cells.high.textContent = formatLevel(this.high);
    cells.low.textContent = formatLevel(this.low);
    cells.time.textContent = formatHkt(this.tsEvent);
  }

  markStale(now) {
    const stale = now - this.updatedAt >= STALE_AFTER_MS;
    if (stale === this.stale) return;
    this.stale = stale;
    this.element.classList.toggle("stale", stale);
    this.cells.state.textContent = stale ? "stale" : "";
    this.cells.state.title = stale ? "no update for 30 s or more" : "";
  }
}

function rowElement(spec) {
  const row = document.createElement("tr");
  row.dataset.index = spec.code;
  row.tabIndex = 0;
  row.setAttribute("aria-selected", "false");
  for (const field of FIELDS) {
    const cell = document.createElement(field === "code" ? "th" : "td");
    if (field === "code") cell.scope = "row";
    cell.dataset.field = field;
    if (NUMERIC.has(field)) cell.className = "num";
    row.append(cell);
  }
  row.cells[0].textContent = spec.code;
  row.cells[1].textContent = spec.name;
  return row;
}

/** Every index's row; levels go in as they come, the DOM is written by ``draw``. */
export class IndexTable {
  constructor(tbody, indices, onToggle) {
    this.rows = new Map();
    this.dirty = new Set();
    this.day = null;
    for (const spec of indices) {
      const element = rowElement(spec);
      tbody.append(element);
      this.rows.set(spec.code, new IndexRow(spec, element));
      const toggle = () => onToggle(spec.code);
      element.addEventListener("click", toggle);
      element.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          toggle();
        }
      });
    }
  }

  /** The last seq of every index seen (for ``since=`` on a reconnect). */
  lastSeqs() {
    return [...this.rows.values()].filter((row) => row.seq !== null).map((r) => [r.spec.code, r.seq]);
  }

  seq(code) {
    return this.rows.get(code)?.seq ?? null;
  }

  /** A snapshot entry of ``/v1/levels``: its day high and low are the gateway's. */
  snapshot(entry) {
    const row = this.rows.get(entry.index);
    if (!row || (row.seq !== null && entry.seq <= row.seq)) return;
    this.apply(entry);
    if (entry.day_high !== null && entry.day_high !== undefined) {
      row.high = entry.day_high;
      row.low = entry.day_low;
    }
  }

  /** One level of the stream; false when it is not new (seq already seen). */
  apply(event) {
    const row = this.rows.get(event.index);
    if (!row || (row.seq !== null && event.seq <= row.seq)) return false;
    const day = hktDay(event.ts_event);
    if (this.day === null || day > this.day) {
      this.day = day;
      for (const other of this.rows.values()) other.high = other.low = null;
    }
    if (day === this.day) {
      row.high = row.high === null ? event.level : Math.max(row.high, event.level);
      row.low = row.low === null ? event.level : Math.min(row.low, event.level);
    }
    row.level = event.level;
    row.seq = event.seq;
    row.tsEvent = event.ts_event;
    row.updatedAt = performance.now();
    this.dirty.add(row);
    return true;
  }

  draw() {
    for (const row of this.dirty) row.draw();
    this.dirty.clear();
  }

  markStale() {
    const now = performance.now();
    for (const row of this.rows.values()) row.markStale(now);
  }

  select(code, selected) {
    this.rows.get(code)?.element.setAttribute("aria-selected", String(selected));
  }
}
