#!/usr/bin/env bash
# Vendors the live page's chart library (TradingView lightweight-charts, the exact version of
# web/package-lock.json) from the npm registry into consumers/gateway/static/vendor/: its
# standalone ES module build and its licences. Run by make (`make vendor`, and by the targets that
# need it); the page is served as it is, with no build step for the user and no CDN at run time.
# Without npm it warns and does nothing: the page then shows its table and says the chart is missing.
set -euo pipefail
cd "$(dirname "$0")"
vendor=../consumers/gateway/static/vendor
if ! command -v npm >/dev/null 2>&1; then
  echo "web/vendor.sh: npm is not installed: the live page will have no chart (install Node.js and npm, then make vendor)" >&2
  exit 0
fi
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
mkdir -p "$vendor"
cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.mjs \
  "$vendor/lightweight-charts.mjs"
cp node_modules/lightweight-charts/LICENSE "$vendor/lightweight-charts.LICENSE.txt"
node -p '["lightweight-charts", "fancy-canvas"].map((name) => {
  const p = require(`./node_modules/${name}/package.json`);
  return `${name} ${p.version}: ${p.license} (bundled in lightweight-charts.mjs)`;
}).join("\n")' >"$vendor/NOTICE.txt"
echo "web/vendor.sh: lightweight-charts $(node -p 'require("./node_modules/lightweight-charts/package.json").version') in consumers/gateway/static/vendor/"
