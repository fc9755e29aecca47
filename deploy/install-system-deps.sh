#!/usr/bin/env bash
# System packages the project's real parts need (Debian): Java + Maven for the Kafka broker,
# Prometheus (server and promtool) and kcat for the outside-tool tests. Installs only what is
# missing; needs root or sudo for apt-get.
set -euo pipefail
missing=()
command -v java >/dev/null 2>&1 || missing+=(default-jre-headless)
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v prometheus >/dev/null 2>&1 || missing+=(prometheus)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v kcat >/dev/null 2>&1 || missing+=(kcat)
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-system-deps: java, mvn, prometheus, promtool and kcat are present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install-system-deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
  $(printf '%s\n' "${missing[@]}" | sort -u) >/dev/null
# The Debian package starts a Prometheus server on :9090; the tests run their own.
if command -v systemctl >/dev/null 2>&1; then $sudo systemctl stop prometheus 2>/dev/null || true; fi
$sudo pkill -x prometheus 2>/dev/null || true
