// Number and Hong Kong time formats of the live page.

export const HKT_OFFSET_MS = 8 * 3600 * 1000;
const MS_PER_DAY = 86400 * 1000;

/** A level with two decimals (rounded as Number.prototype.toFixed) and thousands separators. */
export function formatLevel(value) {
  if (value === null || value === undefined || !Number.isFinite(value)) return "";
  const [whole, fraction] = Math.abs(value).toFixed(2).split(".");
  const grouped = whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return `${value < 0 ? "-" : ""}${grouped}.${fraction}`;
}

/** A change with its sign: "+12.34", "-0.50". */
export function formatChange(value) {
  if (!Number.isFinite(value)) return "";
  return `${value > 0 ? "+" : value < 0 ? "-" : ""}${formatLevel(Math.abs(value))}`;
}

/** A percentage with its sign: "+0.12%". */
export function formatPercent(value) {
  if (!Number.isFinite(value)) return "";
  return `${value > 0 ? "+" : value < 0 ? "-" : ""}${Math.abs(value).toFixed(2)}%`;
}

function pad(number, width = 2) {
  return String(number).padStart(width, "0");
}

/** Nanoseconds since the epoch as Hong Kong time: "HH:MM:SS.mmm HKT". */
export function formatHkt(tsEventNs) {
  const shifted = new Date(Math.floor(tsEventNs / 1e6) + HKT_OFFSET_MS);
  return (
    `${pad(shifted.getUTCHours())}:${pad(shifted.getUTCMinutes())}:` +
    `${pad(shifted.getUTCSeconds())}.${pad(shifted.getUTCMilliseconds(), 3)} HKT`
  );
}

/** The Hong Kong calendar day (days since the epoch) of a time in nanoseconds. */
export function hktDay(tsEventNs) {
  return Math.floor((tsEventNs / 1e6 + HKT_OFFSET_MS) / MS_PER_DAY);
}

/** The chart's time of a level: whole seconds, shifted so that the UTC axis reads HKT. */
export function chartTime(tsEventNs) {
  return Math.floor(tsEventNs / 1e9) + HKT_OFFSET_MS / 1000;
}
