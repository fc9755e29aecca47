// The live page: snapshot from /v1/indices and /v1/levels, then the /v1/stream WebSocket
// (every message a JSON array of events); the DOM is written at most once per animation frame.

import { IndexChart, loadChartLibrary } from "./chart.js";
import { IndexTable } from "./table.js";

const RECONNECT_MIN_MS = 500;
const RECONNECT_MAX_MS = 5000;

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

class LivePage {
  constructor(indices, chart) {
    this.status = document.getElementById("status");
    this.rate = document.getElementById("rate");
    this.chartTitle = document.getElementById("chart-indices");
    this.table = new IndexTable(document.querySelector("#indices tbody"), indices, (code) =>
      this.toggle(code),
    );
    this.chart = chart;
    this.frame = 0;
    this.received = 0;
    this.reconnectMs = RECONNECT_MIN_MS;
  }

  setStatus(state, text = state) {
    this.status.dataset.state = state;
    this.status.textContent = text;
  }

  schedule() {
    if (!this.frame) this.frame = requestAnimationFrame(() => this.draw());
  }

  draw() {
    this.frame = 0;
    this.table.draw();
    this.chart?.draw();
  }

  async snapshot(codes = null) {
    const query = codes ? `?indices=${encodeURIComponent(codes.join(","))}` : "";
    const { levels } = await getJson(`/v1/levels${query}`);
    for (const entry of levels) this.table.snapshot(entry);
    this.schedule();
  }

  async toggle(code) {
    if (!this.chart) return;
    const selected = !this.chart.has(code);
    this.table.select(code, selected);
    if (!selected) {
      this.chart.remove(code);
    } else {
      this.chart.add(code);
      await this.seedChart(code);
    }
    this.chartTitle.textContent = this.chart.codes().join(", ");
  }

  async seedChart(code) {
    const { levels } = await getJson(`/v1/levels/${encodeURIComponent(code)}/history`);
    this.chart.seed(code, levels);
  }

  onEvents(events) {
    const resync = [];
    for (const event of events) {
      if (event.type === "level") {
        this.received += 1;
        if (this.table.apply(event)) this.chart?.push(event.index, event);
      } else if (event.type === "gap") {
        resync.push(event.index);
      }
    }
    if (resync.length) this.resync(resync);
    this.schedule();
  }

  async resync(codes) {
    this.setStatus("resyncing");
    await this.snapshot(codes);
    await Promise.all(codes.filter((code) => this.chart?.has(code)).map((c) => this.seedChart(c)));
    this.setStatus("live");
  }

  connect() {
    const since = this.table.lastSeqs().map(([code, seq]) => `${code}:${seq}`);
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = since.length ? `?since=${encodeURIComponent(since.join(","))}` : "";
    const socket = new WebSocket(`${scheme}//${location.host}/v1/stream${query}`);
    this.socket = socket;
    socket.onopen = () => {
      this.reconnectMs = RECONNECT_MIN_MS;
      this.setStatus("live");
    };
    socket.onmessage = (message) => {
      const decoded = JSON.parse(message.data);
      this.onEvents(Array.isArray(decoded) ? decoded : [decoded]);
    };
    socket.onclose = (close) => {
      const reason = close.reason ? ` (${close.reason})` : "";
      const wait = this.reconnectMs;
      this.reconnectMs = Math.min(2 * this.reconnectMs, RECONNECT_MAX_MS);
      this.setStatus("reconnecting", `reconnecting in ${(wait / 1000).toFixed(1)} s${reason}`);
      setTimeout(() => this.connect(), wait);
    };
  }

  everySecond() {
    this.table.markStale();
    this.rate.textContent = `${this.received.toLocaleString("en-US")} levels/s`;
    this.received = 0;
  }
}

async function start() {
  const { indices } = await getJson("/v1/indices");
  const library = await loadChartLibrary(document.getElementById("chart-note"));
  const chart = library ? new IndexChart(library, document.getElementById("chart")) : null;
  const page = new LivePage(indices, chart);
  window.tickindexPage = page; // for the console and the browser test
  await page.snapshot();
  page.connect();
  setInterval(() => page.everySecond(), 1000);
  if (indices.length) await page.toggle(indices[0].code);
}

start().catch((error) => {
  const status = document.getElementById("status");
  status.dataset.state = "reconnecting";
  status.textContent = `failed: ${error.message} (reload to retry)`;
  console.error(error);
});
